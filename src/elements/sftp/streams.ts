/**
 * Node streams over an open SFTP file handle, with memory bounded by a few chunks whatever the
 * file's size.
 *
 * Written here rather than taken from ssh2's createReadStream/createWriteStream because Ferry
 * needs: the handle opened beforehand (so "missing file" is a rejected promise, not a late
 * stream error), the close of a written file *acknowledged* before the stream finishes (so a
 * rename right after can trust the bytes are there), the per-request timeout of
 * `SftpConnection.call`, errors mapped to domain errors, and several writes in flight (one
 * round trip per chunk would make large uploads slow).
 */
import { Readable, Writable } from 'node:stream';
import type { SftpConnection } from './connection.js';
import { sftpError } from './errors.js';

/** Bytes asked for per read request (OpenSSH serves up to 256 KiB; ssh2 splits if less). */
const READ_CHUNK = 256 * 1024;
/** Write requests in flight at once per stream. */
const WRITES_IN_FLIGHT = 8;

async function closeHandle(conn: SftpConnection, handle: Buffer): Promise<void> {
  await conn.call((sftp, done) => sftp.close(handle, done));
}

/** Reads a file from an open handle; closes it (and calls `onClose`) when done or destroyed. */
export class SftpReadStream extends Readable {
  private position = 0;

  constructor(
    private readonly conn: SftpConnection,
    private readonly handle: Buffer,
    /** The instance path, for error messages. */
    private readonly path: string,
    private readonly onClose: () => void,
  ) {
    super({ highWaterMark: READ_CHUNK });
  }

  override _read(): void {
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    this.conn
      .call<number>((sftp, done) => sftp.read(this.handle, buffer, 0, READ_CHUNK, this.position, done))
      .then(
        (bytes) => {
          if (!bytes) {
            this.push(null);
            return;
          }
          this.position += bytes;
          this.push(bytes === READ_CHUNK ? buffer : buffer.subarray(0, bytes));
        },
        (e: unknown) => this.destroy(sftpError(e, this.path, 'read')),
      );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    closeHandle(this.conn, this.handle)
      .catch(() => undefined)
      .finally(() => {
        this.onClose();
        callback(error);
      });
  }
}

/**
 * Writes to an open handle with up to WRITES_IN_FLIGHT requests outstanding. Finishes only
 * after every write and the close of the handle are acknowledged by the server.
 */
export class SftpWriteStream extends Writable {
  private position = 0;
  private inFlight = 0;
  private failure: Error | undefined;
  private handleClosed = false;
  /** A write callback held back because too many requests are in flight. */
  private blocked: ((error?: Error | null) => void) | undefined;
  /** _final's callback, waiting for the last requests. */
  private finishing: (() => void) | undefined;

  constructor(
    private readonly conn: SftpConnection,
    private readonly handle: Buffer,
    private readonly path: string,
  ) {
    super({ highWaterMark: 256 * 1024 });
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.position;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.failure) {
      callback(this.failure);
      return;
    }
    const at = this.position;
    this.position += chunk.length;
    this.inFlight++;
    this.conn
      .call((sftp, done) => sftp.write(this.handle, chunk, 0, chunk.length, at, done))
      .then(
        () => this.settle(),
        (e: unknown) => {
          this.failure ??= sftpError(e, this.path, 'write');
          this.settle();
        },
      );
    if (this.inFlight < WRITES_IN_FLIGHT) callback();
    else this.blocked = callback;
  }

  private settle(): void {
    this.inFlight--;
    const blocked = this.blocked;
    if (blocked && (this.inFlight < WRITES_IN_FLIGHT || this.failure)) {
      this.blocked = undefined;
      blocked(this.failure);
    }
    if (this.inFlight === 0 && this.finishing) {
      const finishing = this.finishing;
      this.finishing = undefined;
      finishing();
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    const finish = () => {
      if (this.failure) {
        callback(this.failure);
        return;
      }
      this.handleClosed = true;
      closeHandle(this.conn, this.handle).then(
        () => callback(),
        (e: unknown) => callback(sftpError(e, this.path, 'write')),
      );
    };
    if (this.inFlight === 0) finish();
    else this.finishing = finish;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.handleClosed) {
      callback(error);
      return;
    }
    this.handleClosed = true;
    closeHandle(this.conn, this.handle)
      .catch(() => undefined)
      .finally(() => callback(error));
  }
}
