/**
 * The one way Ferry opens an outbound connection (DESIGN §3.3, issue 24): `guardedConnect`, a
 * `net.connect` / `tls.connect` that applies the egress policy to the socket's remote address
 * after it is chosen and before a single packet is sent to it. Every outbound client goes
 * through it — the AWS SDK's HTTP handler (`guardedAgents`), ssh2 (its `sock` option) and undici
 * for webhooks (`guardedUndiciConnector`) — so a new element gets the check by using these, and
 * test/security/egress-connect.test.ts fails when code under src/ opens sockets another way.
 *
 * Why here and not only in a DNS lookup: Node's `net.connect` skips `lookup` entirely when the
 * host is already an IP literal, so a lookup-only check lets a stored `http://127.0.0.1:9000`
 * through whatever the policy says now. The three layers below close every path:
 *
 * 1. An IP literal host (`127.0.0.1`, `::1`, `::ffff:127.0.0.1`, `fe80::1%lo`) is checked before
 *    a socket exists; a refused one gets a socket that never connects and fails with the
 *    `forbidden` error (no SYN is ever sent).
 * 2. Any other host goes through the policy's lookup, which resolves it (getaddrinfo also reads
 *    `127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`) and refuses the name when ANY of its
 *    addresses is refused; `net` connects only to the checked addresses it returns.
 * 3. Belt and braces: when TCP connects, `remoteAddress` is checked again before anything is
 *    written (the TLS layer and ssh2 start only after this check ran), so even a parser
 *    disagreement between Node and the policy cannot leak a request.
 */
import http from 'node:http';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import tls from 'node:tls';
import { errors as undiciErrors, type buildConnector } from 'undici';

/** What the connect-time guard needs from the policy (egress.ts builds it). */
export interface AddressGuard {
  /** Why connecting to `ip`, reached through `hostname`, is refused; null when allowed. */
  explain(ip: string, hostname: string): string | null;
  /** The `forbidden` error (naming FERRY_EGRESS_ALLOW) for a refused address. */
  refusal(hostname: string, ip: string, why: string): Error;
  /** Resolves a name, refusing it when any of its addresses is refused. */
  lookup: LookupFunction;
}

/** Where to connect: a host (name or IP literal, brackets allowed) and a port, plus socket options. */
export type GuardedConnectOptions = Omit<net.TcpNetConnectOpts, 'lookup'> & { path?: undefined };

/**
 * Opens a TCP connection (a TLS one when `tlsOptions` is given) that the egress policy checks
 * before and at connect time. A refusal is the socket's 'error' event carrying the `forbidden`
 * FerryError, emitted asynchronously like any connect error.
 */
export type GuardedConnect = (options: GuardedConnectOptions, tlsOptions?: tls.ConnectionOptions) => net.Socket;

function bare(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}

/**
 * A socket that never connects: it fails with `err` exactly the way a failed DNS lookup fails
 * (Node emits the error after the caller had the chance to listen), so every client handles it
 * as it handles any connect error. The host is a reserved name (RFC 2606) that `lookup` refuses
 * without any resolving; no packet leaves the machine.
 */
function refusedSocket(options: GuardedConnectOptions, err: Error): net.Socket {
  const fail: LookupFunction = (_hostname, _options, callback) => callback(err as NodeJS.ErrnoException, '', 4);
  return net.connect({ ...options, path: undefined, host: 'egress-refused.invalid', port: options.port, lookup: fail, autoSelectFamily: false } as net.TcpNetConnectOpts);
}

/** Builds `guardedConnect` for a policy. */
export function createGuardedConnect(guard: AddressGuard): GuardedConnect {
  return (given, tlsOptions) => {
    // HTTP agents pass the request path as `path`, which net would take for a local socket;
    // a real local socket (`socketPath`) is not egress and is refused.
    const options = { ...given, path: undefined } as GuardedConnectOptions;
    if ((given as { socketPath?: string }).socketPath !== undefined) {
      return refusedSocket(options, guard.refusal('a local socket', 'a local socket', 'not an IP address'));
    }
    const host = bare(options.host ?? 'localhost');
    if (net.isIP(host)) {
      const why = guard.explain(host, host);
      if (why) return refusedSocket(options, guard.refusal(host, host, why));
    }
    const raw = net.connect({ ...options, host, lookup: guard.lookup });
    // Registered before anyone else can listen: runs first when TCP connects, before the TLS
    // layer's ClientHello, ssh2's banner or an HTTP client's buffered request.
    raw.once('connect', () => {
      const ip = raw.remoteAddress;
      const why = ip === undefined ? 'not an IP address' : guard.explain(ip, host);
      if (why) raw.destroy(guard.refusal(host, ip ?? 'an unknown address', why));
    });
    if (!tlsOptions) return raw;
    const servername = tlsOptions.servername ?? (net.isIP(host) ? undefined : host);
    return tls.connect({ ...tlsOptions, host, servername, socket: raw });
  };
}

/** Options of the keep-alive agents an HTTP client (the AWS SDK) connects through. */
export interface GuardedAgentOptions {
  keepAlive?: boolean;
  maxSockets?: number;
}

/**
 * An `http.Agent` and an `https.Agent` whose every socket comes from `connect` (keep-alive
 * pools as usual; TLS sessions are not cached across sockets).
 */
export function guardedAgents(connect: GuardedConnect, options: GuardedAgentOptions = {}): { httpAgent: http.Agent; httpsAgent: https.Agent } {
  const httpAgent = new http.Agent(options);
  httpAgent.createConnection = (opts) => connect(opts as GuardedConnectOptions);
  const httpsAgent = new https.Agent(options);
  httpsAgent.createConnection = (opts) => connect(opts as GuardedConnectOptions, opts as tls.ConnectionOptions);
  return { httpAgent, httpsAgent };
}

/** Settings of the undici connector. */
export interface GuardedUndiciOptions {
  /** Milliseconds for resolving plus TCP (and TLS) connect. */
  connectTimeoutMs: number;
}

/**
 * An undici `connect` function (for `new Agent({connect})`) that opens every socket through
 * `connect`. Refusals reach the request as the `forbidden` FerryError.
 */
export function guardedUndiciConnector(connect: GuardedConnect, options: GuardedUndiciOptions): buildConnector.connector {
  return (opts, callback) => {
    const secure = opts.protocol === 'https:';
    const host = bare(opts.hostname);
    const port = Number(opts.port) || (secure ? 443 : 80);
    const socket = connect(
      { host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 },
      secure ? { servername: opts.servername ?? undefined, ALPNProtocols: ['http/1.1'] } : undefined,
    );
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', finish);
      if (err) {
        socket.destroy();
        callback(err, null);
      } else {
        callback(null, socket);
      }
    };
    const timer = setTimeout(() => {
      const err = new undiciErrors.ConnectTimeoutError(`connect timed out after ${options.connectTimeoutMs} ms`);
      finish(err);
    }, options.connectTimeoutMs);
    // A socket the connect-time check destroyed still emits 'connect'; its 'error' follows.
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (!socket.destroyed) finish(null);
    });
    socket.once('error', finish);
  };
}
