/**
 * The spool: where the body of an asynchronous upload waits for its job (issue 25). The body is
 * streamed to a file in FERRY_SPOOL_DIR as it arrives — never held in memory, never put in a
 * store row — and made durable (fsync of the file and of the folder) before the event is
 * committed and answered. The job replays its request from the file, and the runner deletes the
 * file once the job's outcome is stored. Files nothing refers to any more (a crash between
 * spooling and committing, or between completing and deleting) are swept at start.
 *
 * Several nodes (PostgreSQL) must share one spool folder (a shared volume), since any node may
 * run a job another accepted; a job whose spool file is missing fails with a clear message.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, fdatasync } from 'node:fs';
import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { SpooledBody } from '../store/async.js';

/**
 * Bytes received between two background `fdatasync`s of a spool file while its body arrives:
 * the disk writes back during the upload, so the fsync before the answer has at most this much
 * left to flush instead of the whole body (a 1 GiB body's single fsync took about a second).
 */
const FLUSH_EVERY = 64 * 1024 * 1024;

/** Spool file names: random, so nothing in a name is taken from a request. */
const SPOOL_NAME = /^[0-9a-f]{32}\.body$/;

/** Thrown by `receive` when the body exceeds its limit (the caller maps it to 413). */
export class SpoolLimitExceeded extends Error {
  constructor(readonly limit: number) {
    super(`spooled body over ${limit} bytes`);
  }
}

export class Spool {
  private ready: Promise<void> | null = null;

  constructor(readonly dir: string) {}

  private ensure(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.ready;
  }

  /** The host path of spool file `file` (a name from `receive`; anything else is refused). */
  pathOf(file: string): string {
    if (!SPOOL_NAME.test(file)) throw new Error(`not a spool file name: ${file.slice(0, 80)}`);
    return path.join(this.dir, file);
  }

  /**
   * Streams `body` into a new spool file, at most `limit` bytes (over it: SpoolLimitExceeded,
   * and the file is removed), then fsyncs the file and the folder: once this resolves, the
   * bytes survive a crash (and a power loss).
   */
  async receive(body: Readable, limit: number): Promise<SpooledBody> {
    await this.ensure();
    const file = `${randomBytes(16).toString('hex')}.body`;
    const abs = this.pathOf(file);
    let size = 0;
    const out = createWriteStream(abs, { flags: 'wx', mode: 0o600 });
    let fd = -1;
    out.once('open', (opened: number) => (fd = opened));
    let unflushed = 0;
    let flushing: Promise<void> | null = null;
    try {
      // Read with listeners, not pipeline(): a pipeline that fails destroys the request, and
      // with it the client's keep-alive connection, before the 413 is sent. Refused, the body
      // is left paused for http/unread-body.ts to discard.
      await new Promise<void>((resolve, reject) => {
        let ended = false;
        const fail = (e: unknown) => {
          body.off('data', onData);
          body.pause();
          reject(e);
        };
        const onData = (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) return fail(new SpoolLimitExceeded(limit));
          if (!out.write(chunk)) {
            body.pause();
            out.once('drain', () => body.resume());
          }
          unflushed += chunk.length;
          if (unflushed >= FLUSH_EVERY && fd >= 0 && !flushing) {
            unflushed = 0;
            // Errors are ignored here: the fsync below reports what matters.
            flushing = new Promise((done) => fdatasync(fd, () => done()));
            void flushing.then(() => (flushing = null));
          }
        };
        body.on('data', onData);
        body.once('end', () => {
          ended = true;
          out.end();
        });
        body.once('error', fail);
        body.once('close', () => {
          if (!ended) fail(Object.assign(new Error('The request body ended before it was complete'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
        });
        out.once('error', fail);
        out.once('finish', () => resolve());
      });
      await flushing;
      const handle = await open(abs, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.syncFolder();
    } catch (e) {
      out.destroy();
      await flushing;
      await unlink(abs).catch(() => undefined);
      throw e;
    }
    return { file, size };
  }

  private async syncFolder(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } catch {
      // Some file systems refuse fsync on a folder; the file itself is synced.
    } finally {
      await handle.close();
    }
  }

  /** A stream of the spooled body; rejects with code ENOENT when the file is gone. */
  async open(body: SpooledBody): Promise<Readable> {
    const abs = this.pathOf(body.file);
    await stat(abs); // fail here (ENOENT) rather than inside the replay
    return createReadStream(abs, { highWaterMark: 256 * 1024 });
  }

  /** Deletes a spool file (no error when it is gone). */
  async remove(body: SpooledBody): Promise<void> {
    await unlink(this.pathOf(body.file)).catch(() => undefined);
  }

  /**
   * Deletes spool files no job refers to (`referenced`) that are older than `minAgeMs` (a node
   * sharing the folder may be spooling one it has not committed yet). Returns how many.
   */
  async sweep(referenced: Iterable<string>, minAgeMs: number): Promise<number> {
    const keep = new Set(referenced);
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    const before = Date.now() - minAgeMs;
    let removed = 0;
    for (const name of names) {
      if (!SPOOL_NAME.test(name) || keep.has(name)) continue;
      const abs = path.join(this.dir, name);
      try {
        if ((await stat(abs)).mtimeMs > before) continue;
        await unlink(abs);
        removed++;
      } catch {
        // gone meanwhile
      }
    }
    return removed;
  }
}

/**
 * Bytes the spool folder `dir` holds now (what waits for jobs, and what is being received): for
 * the node's metrics (issue 14 exports it), read from the disk so every thread's files count.
 */
export async function spoolBytes(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let total = 0;
  for (const name of names) {
    if (!SPOOL_NAME.test(name)) continue;
    try {
      total += (await stat(path.join(dir, name))).size;
    } catch {
      // removed meanwhile
    }
  }
  return total;
}
