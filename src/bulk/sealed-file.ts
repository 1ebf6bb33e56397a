/**
 * Bulk results encrypted at rest (issue 17): an append-only file of sealed frames, each
 * `[u32 length][12-byte IV][16-byte tag][AES-256-GCM ciphertext]`, under a key derived from the
 * master key (identity/crypto.ts `derive`, so the master key itself is never used twice). Frames
 * let the writer stream (nothing is held beyond one frame) and let a re-run after a crash cut
 * the file back to its last checkpointed length and append from there.
 *
 * A master key rotation (identity/rotate.ts) re-seals each file frame by frame under the new
 * key: a frame keeps its length, so a checkpointed length stays valid. Readers accept a list of
 * keys (current first, then those of a rotation still under way) and open each frame with
 * whichever fits, so a file is readable at every step of a rotation, even one that stopped.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crashPoint } from '../testing/crash-points.js';

const FRAME_BYTES = 256 * 1024;
const HEAD = 4 + 12 + 16;

/** Room past FRAME_BYTES in the frame buffer, so a frame is sealed full rather than early. */
const SLACK = 64 * 1024;

/** Appends sealed frames to one file. */
export class SealedWriter {
  /**
   * The plaintext of the frame being filled, one buffer reused for every frame: a fresh buffer
   * (or string) of a frame's size per frame cost more in page faults than the sealing itself.
   */
  private plain = Buffer.allocUnsafe(FRAME_BYTES + SLACK);
  private pendingBytes = 0;

  private constructor(
    private readonly fd: number,
    private readonly key: Buffer,
    /** Bytes of the file that are whole frames. */
    public length: number,
  ) {}

  /** Opens `file` for appending after its first `from` bytes (0: a new file; the rest is cut). */
  static open(file: string, key: Buffer, from = 0): SealedWriter {
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    fs.ftruncateSync(fd, from);
    return new SealedWriter(fd, key, from);
  }

  /** Adds plaintext; a full frame is sealed and written. */
  write(text: string): void {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8: with that much room, nothing is cut.
    this.makeRoom(text.length * 3);
    this.pendingBytes += this.plain.write(text, this.pendingBytes, 'utf8');
    if (this.pendingBytes >= FRAME_BYTES) this.seal();
  }

  /**
   * Adds the plaintext bytes `encode(value, buffer, at)` writes at `at` (at most `room` of them)
   * and returns true — unless it returns -1 instead of the offset after them: then nothing is
   * added, and false is returned. No string is built for what is added this way.
   */
  append<T>(room: number, encode: (value: T, out: Buffer, at: number) => number, value: T): boolean {
    this.makeRoom(room);
    const end = encode(value, this.plain, this.pendingBytes);
    if (end < 0) return false;
    this.pendingBytes = end;
    if (this.pendingBytes >= FRAME_BYTES) this.seal();
    return true;
  }

  /** Seals the pending frame if `bytes` more might not fit in it. */
  private makeRoom(bytes: number): void {
    if (this.pendingBytes + bytes <= this.plain.length) return;
    this.seal();
    if (bytes > this.plain.length) this.plain = Buffer.allocUnsafe(bytes);
  }

  /** Seals and writes what is pending as one frame. */
  seal(): void {
    if (this.pendingBytes === 0) return;
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    const first = cipher.update(this.plain.subarray(0, this.pendingBytes));
    const last = cipher.final();
    this.pendingBytes = 0;
    const body = last.length === 0 ? first : Buffer.concat([first, last]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    this.length += writeAllAt(this.fd, [head, iv, cipher.getAuthTag(), body], this.length);
  }

  /** Seals what is pending and makes the file durable; returns its length (a checkpoint). */
  checkpoint(): number {
    this.seal();
    fs.fsyncSync(this.fd);
    return this.length;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Writes every byte of `parts` at `position` (one writev, more only after a short write). */
function writeAllAt(fd: number, parts: Buffer[], position: number): number {
  const total = parts.reduce((n, b) => n + b.length, 0);
  let done = fs.writevSync(fd, parts, position);
  if (done < total) {
    const rest = Buffer.concat(parts).subarray(done);
    for (let at = 0; at < rest.length; ) at += fs.writeSync(fd, rest, at, rest.length - at, position + done + at);
    done = total;
  }
  return done;
}

/** A frame's plaintext under the first of `keys` that opens it, or null when none does. */
function openFrame(head: Buffer, body: Buffer, keys: readonly Buffer[]): { plain: Buffer; key: Buffer } | null {
  for (const key of keys) {
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, head.subarray(4, 16));
      decipher.setAuthTag(head.subarray(16, 32));
      return { plain: Buffer.concat([decipher.update(body), decipher.final()]), key };
    } catch {
      // sealed under another key (a rotation under way), or tampered: try the next key
    }
  }
  return null;
}

/** The whole frames of an open file from offset 0: each frame's head, body and offset. */
async function* frames(handle: fs.promises.FileHandle): AsyncGenerator<{ head: Buffer; body: Buffer; at: number }> {
  let at = 0;
  for (;;) {
    const head = Buffer.alloc(HEAD);
    const { bytesRead } = await handle.read(head, 0, HEAD, at);
    if (bytesRead < HEAD) return;
    const length = head.readUInt32BE(0);
    const body = Buffer.alloc(length);
    const got = await handle.read(body, 0, length, at + HEAD);
    if (got.bytesRead < length) return; // a frame cut by a crash, past the last checkpoint
    yield { head, body, at };
    at += HEAD + length;
  }
}

/** A copy of the keys as a list (readSealed moves the key that opened the last frame first). */
function keyList(keys: Buffer | readonly Buffer[]): Buffer[] {
  return Buffer.isBuffer(keys) ? [keys] : [...keys];
}

/**
 * The plaintext of a sealed file, frame by frame, each opened with whichever of `keys` fits
 * (a frame no key opens throws: tampered, or sealed under a key no longer configured).
 */
export async function* readSealed(file: string, keys: Buffer | readonly Buffer[]): AsyncGenerator<Buffer> {
  const list = keyList(keys);
  const handle = await fs.promises.open(file, 'r');
  try {
    for await (const { head, body } of frames(handle)) {
      const opened = openFrame(head, body, list);
      if (!opened) throw new Error(`a frame of ${file} opens under no configured master key (tampered, or sealed under a key no longer configured)`);
      if (opened.key !== list[0]) list.unshift(...list.splice(list.indexOf(opened.key), 1));
      yield opened.plain;
    }
  } finally {
    await handle.close();
  }
}

/** The suffix of the file a re-seal writes before it replaces the original. */
export const RESEAL_SUFFIX = '.reseal';

/**
 * Re-seals `file` under `next`, each frame opened with whichever of `keys` fits, keeping every
 * frame's length. Crash-safe: the new frames go to `<file>.reseal`, which is fsynced and renamed
 * over the original (and the folder fsynced), so at every moment the file is whole under one set
 * of keys the key file still lists; running it again after a crash starts over from the
 * original. Frames past `durableLength` (written after the job's last checkpoint, which its
 * resume cuts anyway) are dropped from the first one that no key opens; before it such a frame
 * throws, leaving the file as it was.
 */
export async function resealFile(file: string, keys: readonly Buffer[], next: Buffer, durableLength: number): Promise<void> {
  const list = keyList(keys);
  const tmp = file + RESEAL_SUFFIX;
  const handle = await fs.promises.open(file, 'r');
  const out = fs.openSync(tmp, 'w', 0o600);
  try {
    for await (const { head, body, at } of frames(handle)) {
      const opened = openFrame(head, body, list);
      if (!opened) {
        if (at >= durableLength) break;
        throw new Error(`cannot re-seal ${file}: its frame at byte ${at} opens under no configured master key (is master.key the one the results were sealed with?)`);
      }
      const iv = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', next, iv);
      const sealed = Buffer.concat([cipher.update(opened.plain), cipher.final()]);
      const frame = Buffer.concat([head.subarray(0, 4), iv, cipher.getAuthTag(), sealed]);
      fs.writeSync(out, frame, 0, frame.length, at);
    }
    fs.fsyncSync(out);
  } catch (e) {
    fs.closeSync(out);
    fs.rmSync(tmp, { force: true });
    throw e;
  } finally {
    await handle.close();
  }
  fs.closeSync(out);
  crashPoint('reseal-temp');
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
  crashPoint('resealed');
}

/** The lines (NDJSON records) of a sealed file. */
export async function* sealedLines(file: string, keys: Buffer | readonly Buffer[]): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of readSealed(file, keys)) {
    const text = rest + chunk.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line) yield line;
  }
  if (rest) yield rest;
}
