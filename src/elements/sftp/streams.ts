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
/** Read requests in flight at once per stream (memory: this many chunks). */
const READS_IN_FLIGHT = 4;
/** Write requests in flight at once per stream. */
const WRITES_IN_FLIGHT = 8;

async function closeHandle(conn: SftpConnection, handle: Buffer): Promise<void> {
  await conn.call((sftp, done) => sftp.close(handle, done));
}

interface PendingRead {
  offset: number;
  buffer: Buffer;
  /** Bytes read (0 at end of file); rejects with the request's error. */
  result: Promise<number>;
}

/**
 * Reads a file from an open handle with up to READS_IN_FLIGHT requests outstanding (one at a
 * time would cost a round trip per chunk), pushing chunks in file order. Closes the handle (and
 * calls `onClose`) when done or destroyed.
 */
export class SftpReadStream extends Readable {
  /** Offset of the next read request to send. */
  private nextOffset = 0;
  private pending: PendingRead[] = [];
  private pumping = false;
  private atEnd = false;

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
    if (!this.pumping) void this.pump();
  }

  private send(): void {
    const offset = this.nextOffset;
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    this.nextOffset += READ_CHUNK;
    const result = this.conn.call<number>((sftp, done) => sftp.read(this.handle, buffer, 0, READ_CHUNK, offset, done));
    // Requests read ahead may be dropped unread (end of file, destroy): never unhandled.
    result.catch(() => undefined);
    this.pending.push({ offset, buffer, result });
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        while (!this.atEnd && this.pending.length < READS_IN_FLIGHT) this.send();
        const head = this.pending.shift();
        if (!head) return;
        const bytes = await head.result;
        if (this.destroyed) return;
        if (!bytes) {
          this.atEnd = true;
          this.pending = [];
          this.push(null);
          return;
        }
        if (bytes < READ_CHUNK) {
          // A short read: usually the end of the file, but a server may also cap a read.
          // Drop what was read ahead and go on right after the bytes we got.
          this.pending = [];
          this.nextOffset = head.offset + bytes;
        }
        if (!this.push(bytes === READ_CHUNK ? head.buffer : head.buffer.subarray(0, bytes))) return;
      }
    } catch (e) {
      this.destroy(sftpError(e, this.path, 'read'));
    } finally {
      this.pumping = false;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.pending = [];
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
