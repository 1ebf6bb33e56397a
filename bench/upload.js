// upload: an asynchronous upload's accept (body streamed to the spool and fsynced, event
// committed, answered) vs a synchronous upload of the same file (body streamed to localfs) on
// the same node, BENCH_UPLOAD_MB MiB (default 1,024), alternating rounds; and the node's RSS
// growth during each (sampled from /proc every 25 ms; for the async round until its job has
// written the file and its webhook arrived). Targets (issue 25): accept ≤ 1.2× the sync
// upload's time; RSS growth ≤ 50 MB during either.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fmt, mark, median, now, sleep, startNode, startReceiver, table } from './lib.js';

const MIB = 1024 * 1024;
const SIZE_MB = Number(process.env.BENCH_UPLOAD_MB ?? 1024);
const ROUNDS = Number(process.env.BENCH_UPLOAD_ROUNDS ?? 3);
const BOUNDARY = '----ferrybenchboundary7MA4YWxkTrZu0gW';

/** A file of `bytes` on disk (a random MiB repeated), so the client never holds it. */
function makeFile(bytes) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-upload-')), 'big.bin');
  const block = crypto.randomBytes(MIB);
  const fd = fs.openSync(file, 'w');
  for (let written = 0; written < bytes; written += MIB) fs.writeSync(fd, block, 0, Math.min(MIB, bytes - written));
  fs.closeSync(fd);
  return file;
}

/** Streams `file` as a multipart upload; resolves with the status and body once answered. */
function upload(origin, auth, target, file, headers = {}) {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  const length = head.length + fs.statSync(file).size + tail.length;
  const url = new URL(`${origin}/elements/api-v2/hubs/documents/files?path=${encodeURIComponent(target)}&overwrite=true`);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': length, ...headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.write(head);
    const stream = fs.createReadStream(file, { highWaterMark: MIB });
    stream.on('error', reject);
    stream.on('end', () => req.end(tail));
    stream.pipe(req, { end: false });
  });
}

/** Resident set size of process `pid` in bytes (Linux). */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Samples `pid`'s RSS until `stop()`; returns the growth over the first sample. */
function sampler(pid) {
  const base = rss(pid);
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, rss(pid))), 25);
  return () => {
    clearInterval(timer);
    peak = Math.max(peak, rss(pid));
    return peak - base;
  };
}

export async function upload_() {
  console.log(`\n## upload: async accept of a ${SIZE_MB} MiB upload (spooled, fsynced) vs a sync upload of the same file (localfs)\n`);
  if (!fs.existsSync('/proc/self/status')) {
    console.log('skipped: RSS sampling needs /proc (Linux)');
    return;
  }
  const file = makeFile(SIZE_MB * MIB);
  const receiver = await startReceiver();
  const node = await startNode({ root: 'upload' });
  const sync = [];
  const accept = [];
  const syncRss = [];
  const asyncRss = [];
  try {
    for (let n = 0; n < ROUNDS; n++) {
      const order = n % 2 === 0 ? ['sync', 'async'] : ['async', 'sync'];
      for (const which of order) {
        await sleep(500); // let the previous round's garbage go
        const stop = sampler(node.pid);
        const t = now();
        if (which === 'sync') {
          const res = await upload(node.origin, node.auth, `/sync${n}.bin`, file);
          if (res.status !== 200) throw new Error(`sync upload ${res.status}: ${res.body}`);
          sync.push((now() - t) / 1000);
          syncRss.push(stop());
        } else {
          const res = await upload(node.origin, node.auth, `/async${n}.bin`, file, {
            'elements-async-request': 'true',
            'elements-async-callback-url': receiver.url,
          });
          if (res.status !== 200) throw new Error(`async upload ${res.status}: ${res.body}`);
          accept.push((now() - t) / 1000);
          const { eventId } = JSON.parse(res.body);
          const deadline = Date.now() + 600_000;
          while (!receiver.arrivals.has(String(eventId)) && Date.now() < deadline) await sleep(50);
          if (!receiver.arrivals.has(String(eventId))) throw new Error(`no webhook for event ${eventId}`);
          asyncRss.push(stop());
        }
      }
    }
  } finally {
    await node.close();
    await receiver.close();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
  // Each round's pair ran back to back; the figure is the median of the rounds' ratios, as in
  // copy.js: a loaded disk drifts within a run.
  const ratios = accept.map((a, i) => a / sync[i]).sort((a, b) => a - b);
  const ratio = median(ratios);
  const mb = (b) => fmt(b / 1e6, 1);
  const worstRss = Math.max(...syncRss, ...asyncRss);
  table(
    ['figure', 'sync upload (baseline)', 'async accept', 'ratio', 'target'],
    [
      [`time (s), ${ROUNDS} rounds, order alternating; ratio: median of the rounds' (${ratios.map((r) => r.toFixed(2)).join(', ')})`, sync.map((s) => s.toFixed(2)).join(', '), accept.map((s) => s.toFixed(2)).join(', '), `${fmt(ratio, 2)}×`, `≤ 1.2×: ${mark(ratio <= 1.2)}`],
      ['node RSS growth (MB; async: until its job is done)', syncRss.map(mb).join(', '), asyncRss.map(mb).join(', '), '', `≤ 50 MB: ${mark(worstRss <= 50e6)}`],
    ],
  );
}

export { upload_ as upload };
