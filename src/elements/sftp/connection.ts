/**
 * One SSH connection with its SFTP channel, opened through ssh2-sftp-client, and the one place
 * where SFTP requests are sent: `call` adds the operation timeout and notices a broken
 * connection.
 *
 * ssh2-sftp-client is used to establish and end the connection; requests go to the raw ssh2
 * SFTP channel it exposes, because only that keeps SFTP status codes numeric (the wrapper
 * turns them into text) and gives streaming with backpressure over one file handle.
 *
 * A connection is `alive` until its socket or channel closes, a request finds it gone, or a
 * request times out (a server that does not answer one request within the backend timeout is
 * treated as dead: the connection is torn down so every request on it fails fast and the
 * pool opens a fresh one).
 */
import { createHash } from 'node:crypto';
import SftpClient from 'ssh2-sftp-client';
import type { ConnectConfig, SFTPWrapper } from 'ssh2';
import type { GuardedConnect } from '../../async/egress-connect.js';
import { FerryError, backendFailed, backendTimeout, isFerryError, unauthenticated } from '../../errors.js';
import { STATUS, connectionLost, isConnectionLost } from './errors.js';
import { HOST_FINGERPRINT, type SftpSettings } from './settings.js';

/** Milliseconds between SSH keepalives; three unanswered ones close a dead connection. */
const KEEPALIVE_MS = 10_000;

type Callback<T> = (err: Error | null | undefined, value?: T) => void;

/** An open, authenticated SFTP session. */
export class SftpConnection {
  private dead = false;

  private constructor(
    private readonly client: SftpClient,
    /** The raw ssh2 SFTP channel. */
    readonly sftp: SFTPWrapper,
    private readonly timeoutMs: number,
  ) {
    const die = () => {
      this.dead = true;
    };
    client.on('close', die);
    client.on('end', die);
    client.on('error', die);
    sftp.on('close', die);
    // An 'error' event without a listener would crash the process; the requests in flight
    // fail on their own, so noting the death is all there is to do.
    sftp.on('error', die);
  }

  /**
   * Connects and authenticates, verifying the pinned host key when there is one. Rejects with
   * `unauthenticated`, `backendTimeout`, `backendFailed` or — when the egress policy refuses the
   * address — `forbidden`. The TCP socket is opened by `connect` (the egress policy at connect
   * time) and handed to ssh2, so ssh2 never opens a socket of its own.
   */
  static async open(settings: SftpSettings, timeoutMs: number, connect: GuardedConnect): Promise<SftpConnection> {
    // Our own callbacks replace the library's defaults, which print to the console.
    const quiet = () => undefined;
    const client = new SftpClient('ferry', { error: quiet, end: quiet, close: quiet });
    let firstError: (Error & { level?: string; code?: unknown }) | undefined;
    client.on('error', (e: Error) => {
      firstError ??= e;
    });
    let offeredFingerprint: string | undefined;
    const sock = connect({ host: settings.host, port: settings.port });
    let refused: FerryError | undefined;
    sock.once('error', (e: Error) => {
      if (isFerryError(e, 'forbidden')) refused = e;
    });
    const config: ConnectConfig = {
      sock,
      host: settings.host,
      port: settings.port,
      username: settings.username,
      readyTimeout: timeoutMs,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: 3,
      tryKeyboard: false,
    };
    if (settings.password !== null) config.password = settings.password;
    if (settings.privateKey !== null) {
      config.privateKey = settings.privateKey;
      if (settings.passphrase !== null) config.passphrase = settings.passphrase;
    }
    if (settings.fingerprint !== null) {
      const pinned = settings.fingerprint;
      config.hostVerifier = (key: Buffer) => {
        const actual = createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
        if (actual === pinned) return true;
        offeredFingerprint = actual;
        return false;
      };
    }

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      // readyTimeout covers the SSH handshake; this also covers opening the SFTP channel.
      timer = setTimeout(() => reject(backendTimeout(`The SFTP server at ${where(settings)} did not answer within ${timeoutMs} ms.`)), timeoutMs + 1000);
    });
    try {
      const connecting = client.connect(config);
      // When the timer wins, the abandoned attempt still settles later: never unhandled.
      connecting.catch(() => undefined);
      const sftp = await Promise.race([connecting, timedOut]);
      return new SftpConnection(client, sftp, timeoutMs);
    } catch (e) {
      destroy(client);
      sock.destroy();
      if (refused) throw refused;
      if (offeredFingerprint !== undefined) {
        throw backendFailed(
          `The SFTP server at ${where(settings)} presented host key SHA256:${offeredFingerprint}, which does not match '${HOST_FINGERPRINT}' (SHA256:${settings.fingerprint}). Refusing to connect: check the server's key before changing the pin.`,
          { providerMessage: 'host key verification failed' },
        );
      }
      throw connectError(firstError ?? e, settings);
    } finally {
      clearTimeout(timer);
    }
  }

  /** False once the connection is known to be unusable. */
  get alive(): boolean {
    return !this.dead;
  }

  /**
   * Sends one SFTP request. Resolves with its result; rejects with the raw status error (for
   * the caller to map with its path), `connectionLost`, or `backendTimeout`.
   */
  call<T = void>(send: (sftp: SFTPWrapper, done: Callback<T>) => void): Promise<T> {
    if (this.dead) return Promise.reject(connectionLost(new Error('connection closed')));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.kill();
        reject(backendTimeout(`The SFTP server did not answer within ${this.timeoutMs} ms.`));
      }, this.timeoutMs);
      const done: Callback<T> = (err, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          if (isConnectionLost(err)) {
            this.dead = true;
            reject(connectionLost(err));
          } else reject(err);
        } else resolve(value as T);
      };
      try {
        send(this.sftp, done);
      } catch (e) {
        // ssh2 throws synchronously for requests it cannot send: an extension the server did
        // not announce (posix-rename, statvfs), or a channel that is gone.
        if (this.dead) done(e as Error);
        else done(Object.assign(new Error((e as Error).message), { code: STATUS.OP_UNSUPPORTED }));
      }
    });
  }

  /** Tears the connection down at once (pending requests fail as lost). */
  kill(): void {
    this.dead = true;
    destroy(this.client);
  }

  /** Ends the connection politely; never rejects. */
  async end(): Promise<void> {
    const wasDead = this.dead;
    this.dead = true;
    if (wasDead) {
      destroy(this.client);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.client.end().catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000))),
    ]);
    clearTimeout(timer);
    destroy(this.client);
  }
}

function where(settings: SftpSettings): string {
  return `${settings.host}:${settings.port}`;
}

/** Closes the underlying socket whatever state the wrapper is in. */
function destroy(client: SftpClient): void {
  const raw = (client as unknown as { client?: { destroy?: () => void } }).client;
  try {
    raw?.destroy?.();
  } catch {
    // already closed
  }
}

function connectError(e: unknown, settings: SftpSettings): FerryError {
  const err = e as (Error & { level?: string; code?: unknown }) | undefined;
  if (e instanceof FerryError) return e;
  const providerMessage = err?.message ?? String(e);
  if (err?.level === 'client-authentication') {
    return unauthenticated(
      `The SFTP server at ${where(settings)} rejected the credentials for user '${settings.username}'. Check the password or private key.`,
    );
  }
  if (err?.level === 'client-timeout' || err?.code === 'ETIMEDOUT') {
    return backendTimeout(`The SFTP server at ${where(settings)} did not complete the SSH handshake in time.`, { providerMessage });
  }
  if (err?.level === 'client-socket' || typeof err?.code === 'string') {
    return backendFailed(`Cannot connect to the SFTP server at ${where(settings)}.`, { providerMessage });
  }
  return backendFailed(`The SSH connection to ${where(settings)} failed.`, { providerMessage });
}
