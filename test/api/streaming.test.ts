/**
 * Streaming through HTTP (DESIGN §1.4): a 200 MB upload and download on localfs while the
 * server's memory stays flat. The server runs in this process, so the process's RSS is the
 * server's; the test generates and hashes its bytes chunk by chunk and never holds the file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SIZE = 200 * 1024 * 1024;
const CHUNK = 256 * 1024;
const MAX_GROWTH = 100 * 1024 * 1024;

/** Samples RSS every 50 ms until stopped; returns the peak. */
function rssSampler(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

/**
 * Chunk `i` of a generated file: random bytes stamped with the chunk index, so no two chunks
 * are equal. A fresh buffer per chunk, because a written buffer may still be queued in the
 * socket; the test holds at most a few chunks at once.
 */
function chunkAt(seed: Buffer, i: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  seed.copy(out, 0, 0, length);
  out.writeUInt32BE(i, 0);
  return out;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

describe('streaming 200 MB through HTTP', () => {
  let srv: TestServer;
  let auth = '';
  let root = '';
  before(async () => {
    srv = await startTestServer();
    const inst = await srv.instance('localfs', { root: 'stream' }, 'stream');
    auth = inst.auth;
    root = path.join(srv.config.localfsBase, 'stream');
  });
  after(async () => {
    await srv.close();
  });

  let uploadedHash = '';

  /** Streams a generated multipart upload of `size` bytes; returns the answer and the SHA-256 sent. */
  function uploadGenerated(target: string, size: number): Promise<{ status: number; body: string; sha256: string }> {
    const url = new URL(`${srv.base}/hubs/documents/files?path=${encodeURIComponent(target)}`);
    const boundary = `----ferry${crypto.randomBytes(8).toString('hex')}`;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="blob.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const hash = crypto.createHash('sha256');
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: url.pathname + url.search,
          headers: {
            authorization: auth,
            'content-type': `multipart/form-data; boundary=${boundary}`,
            'content-length': String(head.length + size + tail.length),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), sha256: hash.digest('hex') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      (async () => {
        // One buffer, reused once each write has been flushed: the test itself makes no
        // garbage, so the RSS measured is the server's.
        const write = (b: Buffer) => new Promise<void>((r, j) => req.write(b, (e) => (e ? j(e) : r())));
        await write(head);
        const buffer = crypto.randomBytes(CHUNK);
        for (let i = 0, sent = 0; sent < size; i++) {
          buffer.writeUInt32BE(i, 0);
          const chunk = buffer.subarray(0, Math.min(CHUNK, size - sent));
          hash.update(chunk);
          sent += chunk.length;
          await write(chunk);
        }
        req.end(tail);
      })().catch(reject);
    });
  }

  it('uploads 200 MB (multipart, streamed) with flat server memory', { timeout: 180_000 }, async (t) => {
    // A warm-up upload brings the process's buffers and allocator to their steady state, so
    // the measurement shows growth with the file size, not one-off start-up allocations.
    const warm = await uploadGenerated('/big/warm-up.bin', 32 * 1024 * 1024);
    assert.equal(warm.status, 200, warm.body.slice(0, 300));

    const baseline = process.memoryUsage().rss;
    const sampler = rssSampler();
    const response = await uploadGenerated('/big/blob.bin', SIZE);
    const peak = sampler.stop();
    assert.equal(response.status, 200, response.body.slice(0, 300));
    const obj = JSON.parse(response.body);
    assert.equal(obj.size, SIZE);
    uploadedHash = response.sha256;
    assert.equal(fs.statSync(path.join(root, 'big', 'blob.bin')).size, SIZE);
    t.diagnostic(`RSS growth during the upload: ${mib(peak - baseline)}`);
    assert.ok(peak - baseline < MAX_GROWTH, `RSS grew by ${mib(peak - baseline)} during a ${mib(SIZE)} upload`);
  });

  it('downloads the 200 MB back with the same SHA-256 and flat server memory', { timeout: 180_000 }, async (t) => {
    if (!uploadedHash) return t.skip('the upload failed');
    const meta: any = await (
      await fetch(`${srv.base}/hubs/documents/files/metadata?path=/big/blob.bin`, { headers: { authorization: auth } })
    ).json();
    assert.equal(meta.size, SIZE);

    const baseline = process.memoryUsage().rss;
    const sampler = rssSampler();
    const res = await fetch(`${srv.base}/hubs/documents/files?path=/big/blob.bin`, { headers: { authorization: auth } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(SIZE));
    const hash = crypto.createHash('sha256');
    let count = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      count += chunk.length;
    }
    const peak = sampler.stop();
    assert.equal(count, SIZE);
    assert.equal(hash.digest('hex'), uploadedHash);
    t.diagnostic(`RSS growth during the download: ${mib(peak - baseline)}`);
    assert.ok(peak - baseline < MAX_GROWTH, `RSS grew by ${mib(peak - baseline)} during a ${mib(SIZE)} download`);
  });

  it('streams an upload sent by fetch as a ReadableStream (duplex: half)', { timeout: 180_000 }, async () => {
    // A smaller body by fetch: chunked transfer encoding rather than a Content-Length.
    const size = 32 * 1024 * 1024;
    const boundary = `----ferry${crypto.randomBytes(8).toString('hex')}`;
    const seed = crypto.randomBytes(CHUNK);
    const hash = crypto.createHash('sha256');
    let i = 0;
    let sent = 0;
    let stage: 'head' | 'body' | 'tail' | 'done' = 'head';
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (stage === 'head') {
          controller.enqueue(
            Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="chunked.bin"\r\n\r\n`),
          );
          stage = 'body';
        } else if (stage === 'body') {
          const chunk = chunkAt(seed, i++, Math.min(CHUNK, size - sent));
          hash.update(chunk);
          sent += chunk.length;
          controller.enqueue(chunk);
          if (sent >= size) stage = 'tail';
        } else if (stage === 'tail') {
          controller.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
          stage = 'done';
          controller.close();
        }
      },
    });
    const res = await fetch(`${srv.base}/hubs/documents/files?path=/big/chunked.bin`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
      duplex: 'half',
    } as RequestInit);
    const obj: any = await res.json();
    assert.equal(res.status, 200, JSON.stringify(obj));
    assert.equal(obj.size, size);
    const down = await fetch(`${srv.base}/hubs/documents/files?path=/big/chunked.bin`, { headers: { authorization: auth } });
    const got = crypto.createHash('sha256');
    for await (const chunk of down.body as unknown as AsyncIterable<Uint8Array>) got.update(chunk);
    assert.equal(got.digest('hex'), hash.digest('hex'));
  });

  it('leaves no partial file when an upload is aborted midway', { timeout: 60_000 }, async () => {
    const url = new URL(`${srv.base}/hubs/documents/files?path=${encodeURIComponent('/big/aborted.bin')}`);
    const boundary = 'ferryabort';
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: url.pathname + url.search,
        headers: {
          authorization: auth,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(50 * 1024 * 1024),
        },
      });
      req.on('error', () => resolve());
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n`);
      req.write(Buffer.alloc(4 * 1024 * 1024, 1), () => {
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 200);
      });
    });
    // The server notices the abort and cleans up its temp file.
    const folder = path.join(root, 'big');
    const deadline = Date.now() + 10_000;
    let leftovers: string[] = [];
    while (Date.now() < deadline) {
      leftovers = fs.readdirSync(folder).filter((n) => !['blob.bin', 'chunked.bin', 'warm-up.bin'].includes(n));
      if (leftovers.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(leftovers, [], 'neither the target nor a temp file remains');
    const meta = await fetch(`${srv.base}/hubs/documents/files/metadata?path=/big/aborted.bin`, { headers: { authorization: auth } });
    assert.equal(meta.status, 404);
    await meta.arrayBuffer();
  });
});
