/**
 * Bulk results encrypted at rest (issue 17): an append-only file of sealed frames, each
 * `[u32 length][12-byte IV][16-byte tag][AES-256-GCM ciphertext]`, under a key derived from the
 * master key (identity/crypto.ts `derive`, so the master key itself is never used twice). Frames
 * let the writer stream (nothing is held beyond one frame) and let a re-run after a crash cut
 * the file back to its last checkpointed length and append from there.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';

const FRAME_BYTES = 256 * 1024;
const HEAD = 4 + 12 + 16;

/** Appends sealed frames to one file. */
export class SealedWriter {
  private pending: Buffer[] = [];
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
    const b = Buffer.from(text, 'utf8');
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= FRAME_BYTES) this.seal();
  }

  /** Seals and writes what is pending as one frame. */
  seal(): void {
    if (this.pendingBytes === 0) return;
    const plain = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    const frame = Buffer.concat([head, iv, cipher.getAuthTag(), body]);
    fs.writeSync(this.fd, frame, 0, frame.length, this.length);
    this.length += frame.length;
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

/** The plaintext of a sealed file, frame by frame (a tampered frame throws). */
export async function* readSealed(file: string, key: Buffer): AsyncGenerator<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    let at = 0;
    const head = Buffer.alloc(HEAD);
    for (;;) {
      const { bytesRead } = await handle.read(head, 0, HEAD, at);
      if (bytesRead < HEAD) return;
      const length = head.readUInt32BE(0);
      const body = Buffer.alloc(length);
      await handle.read(body, 0, length, at + HEAD);
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, head.subarray(4, 16));
      decipher.setAuthTag(head.subarray(16, 32));
      yield Buffer.concat([decipher.update(body), decipher.final()]);
      at += HEAD + length;
    }
  } finally {
    await handle.close();
  }
}

/** The lines (NDJSON records) of a sealed file. */
export async function* sealedLines(file: string, key: Buffer): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of readSealed(file, key)) {
    const text = rest + chunk.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line) yield line;
  }
  if (rest) yield rest;
}
