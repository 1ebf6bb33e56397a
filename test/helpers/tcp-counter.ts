/**
 * A TCP listener of the test's own that counts every connection it receives, on all loopback
 * addresses at once (`::` dual-stack: 127.0.0.1, ::1 and ::ffff:127.0.0.1 all arrive here).
 * With a target port it forwards each connection there (a counting proxy in front of s3rver,
 * sshd or a webhook receiver); without, it accepts and holds the connection.
 *
 * Egress tests use it to prove that a refused address sees no connection at all — not just that
 * the client reported an error after connecting.
 */
import http from 'node:http';
import net from 'node:net';

export interface TcpCounter {
  port: number;
  /** Connections accepted since the start (or the last `reset`). */
  readonly connections: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startTcpCounter(targetPort?: number): Promise<TcpCounter> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (targetPort === undefined) return;
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    reset() {
      connections = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Like `startTcpCounter(targetPort)` for an HTTP server that routes by the Host header (s3rver
 * takes a host that is not an IPv4 literal or `localhost`, such as `[::1]`, for a bucket name):
 * each request is forwarded with `Host: 127.0.0.1:<targetPort>`; TCP connections are counted.
 */
export async function startHttpCounter(targetPort: number): Promise<TcpCounter> {
  let connections = 0;
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${targetPort}` } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    reset() {
      connections = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
