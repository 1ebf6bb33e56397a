// bulk: bulk jobs of the documents hub (issue 17).
// - Export of a localfs tree (BENCH_BULK_FILES files in BENCH_BULK_FOLDERS folders; defaults
//   100,000 and 1,000) through `POST /bulk/query` until COMPLETED, vs `find <root> -printf
//   '%p,%s,%T@\n' > out` on the same tree (≤ 3×), and the node's RSS growth during the export
//   (≤ 50 MB), sampled from /proc every 20 ms.
// - Export of BENCH_BULK_S3 objects (default 20,000) from s3rver: objects/s.
// - Batch of BENCH_BULK_ROWS `copy` rows (default 10,000) on localfs vs the same copies through
//   the hub's single-file copy route from one client with 8 connections (≥ 1×).
// BENCH_BULK_PHASES (export, s3, batch; default all) runs some of them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createInstance, fmt, mark, newPool, now, sleep, startNode, table } from './lib.js';

const FILES = Number(process.env.BENCH_BULK_FILES ?? 100_000);
const FOLDERS = Number(process.env.BENCH_BULK_FOLDERS ?? 1000);
const S3_OBJECTS = Number(process.env.BENCH_BULK_S3 ?? 20_000);
const ROWS = Number(process.env.BENCH_BULK_ROWS ?? 10_000);

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function makeTree(root, files, folders) {
  const body = Buffer.alloc(100, 'x');
  for (let i = 0; i < files; i++) {
    const dir = path.join(root, `d${i % folders}`);
    if (i < folders) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f${i}.txt`), body);
  }
}

/** Starts a job, polls its status until it ends; returns seconds and the final status. */
async function runJob(origin, auth, start) {
  const t = now();
  const res = await start();
  const answer = await res.json();
  if (res.status !== 200) throw new Error(`bulk start ${res.status}: ${JSON.stringify(answer)}`);
  for (;;) {
    const s = await (await fetch(`${origin}/elements/api-v2/hubs/documents/bulk/${answer.id}/status`, { headers: { authorization: auth } })).json();
    if (['COMPLETED', 'ERROR', 'CANCELLED'].includes(s.status)) return { seconds: (now() - t) / 1000, status: s };
    await sleep(20);
  }
}

function exportJob(origin, auth, q) {
  return runJob(origin, auth, () =>
    fetch(`${origin}/elements/api-v2/hubs/documents/bulk/query?q=${encodeURIComponent(q)}`, { method: 'POST', headers: { authorization: auth } }),
  );
}

async function localExport() {
  const node = await startNode({ root: 'bench' });
  const root = path.join(node.localfsBase ?? node.config.localfsBase, 'bench');
  makeTree(path.join(root, 'tree'), FILES, FOLDERS);
  execFileSync('sync');
  const out = path.join(path.dirname(root), 'find.out');
  // Warm both on the same page cache: one untimed find first.
  execFileSync('sh', ['-c', `find '${root}' -printf '%p,%s,%T@\\n' > '${out}'`]);
  let t = now();
  execFileSync('sh', ['-c', `find '${root}' -printf '%p,%s,%T@\\n' > '${out}'`]);
  const findSeconds = (now() - t) / 1000;
  const rss0 = rssBytes(node.pid);
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(node.pid))), 20);
  const job = await exportJob(node.origin, node.auth, 'select * from files');
  clearInterval(sampler);
  peak = Math.max(peak, rssBytes(node.pid));
  await node.close();
  return { findSeconds, job, growth: peak - rss0 };
}

async function s3Export() {
  const { startS3 } = await import('../dist/test/helpers/s3.js');
  const s3 = await startS3();
  if (!s3) return null;
  const node = await startNode({});
  const inst = await createInstance(node.origin, 'amazons3', s3.config, 's3-bulk');
  const client = new S3Client({
    endpoint: s3.directEndpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  for (let i = 0; i < S3_OBJECTS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, S3_OBJECTS - i) }, (_, k) =>
        client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `d${(i + k) % 100}/o${i + k}.txt`, Body: 'x' })),
      ),
    );
  }
  client.destroy();
  const job = await exportJob(node.origin, inst.auth, 'select * from files where directory = false');
  await node.close();
  await s3.stop();
  return job;
}

async function batchVsRoute() {
  const node = await startNode({ root: 'bench' });
  const root = path.join(node.localfsBase ?? node.config.localfsBase, 'bench');
  makeTree(path.join(root, 'src'), ROWS, Math.max(1, Math.ceil(ROWS / 100)));
  const file = (i) => `/src/d${i % Math.max(1, Math.ceil(ROWS / 100))}/f${i}.txt`;
  // The single-file route, one client, 8 connections.
  const pool = newPool(node.origin, 8);
  let next = 0;
  let t = now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = next++; i < ROWS; i = next++) {
        const res = await pool.request({
          method: 'POST',
          path: `/elements/api-v2/hubs/documents/files/copy?path=${encodeURIComponent(file(i))}`,
          headers: { authorization: node.auth, 'content-type': 'application/json' },
          body: JSON.stringify({ path: `/single/f${i}.txt` }),
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`copy ${res.statusCode}: ${text}`);
      }
    }),
  );
  const routeSeconds = (now() - t) / 1000;
  await pool.close();
  const manifest = ['operation,path,to', ...Array.from({ length: ROWS }, (_, i) => `copy,${file(i)},/batch/f${i}.txt`)].join('\n');
  const job = await runJob(node.origin, node.auth, () => {
    const form = new FormData();
    form.append('file', new Blob([manifest], { type: 'text/csv' }), 'manifest.csv');
    form.append('metaData', JSON.stringify({ concurrency: 8 }));
    return fetch(`${node.origin}/elements/api-v2/hubs/documents/bulk/files`, { method: 'POST', headers: { authorization: node.auth }, body: form });
  });
  await node.close();
  return { routeSeconds, job };
}

export async function bulk() {
  console.log(`\n## bulk: export of ${FILES} localfs files in ${FOLDERS} folders vs find; export of ${S3_OBJECTS} s3rver objects; batch of ${ROWS} copy rows vs the copy route (8 connections)\n`);
  // BENCH_BULK_PHASES (e.g. "export") runs some of export, s3 and batch.
  const only = process.env.BENCH_BULK_PHASES?.split(',');
  const phase = (name, run) => (!only || only.includes(name) ? run() : null);
  const rows = [];
  const l = await phase('export', localExport);
  if (l) {
    const ratio = l.job.seconds / l.findSeconds;
    rows.push(
      [
        `localfs export (s), ${l.job.status.recordsCount} records`,
        `find: ${fmt(l.findSeconds, 2)}`,
        fmt(l.job.seconds, 2),
        `${fmt(ratio, 2)}×`,
        `≤ 3×: ${mark(ratio <= 3)}`,
      ],
      ['node RSS growth during the export (MB)', '–', fmt(l.growth / 1e6, 1), '–', `≤ 50 MB: ${mark(l.growth <= 50e6)}`],
    );
  }
  if (!only || only.includes('s3')) {
    const s = await s3Export();
    if (s) rows.push([`s3rver export, ${s.status.recordsCount} objects`, '–', `${fmt(s.seconds, 2)} s`, `${fmt(s.status.recordsCount / s.seconds)} objects/s`, 'reported']);
    else rows.push(['s3rver export', '–', 'skipped: s3rver could not start', '–', '–']);
  }
  const b = await phase('batch', batchVsRoute);
  if (b) {
    const speed = b.routeSeconds / b.job.seconds;
    rows.push([
      `batch of ${ROWS} copy rows (s), ${b.job.status.recordsCount} done, ${b.job.status.recordsFailedCount} failed`,
      `copy route ×8 conns: ${fmt(b.routeSeconds, 2)}`,
      fmt(b.job.seconds, 2),
      `${fmt(speed, 2)}× as fast`,
      `≥ 1×: ${mark(speed >= 1)}`,
    ]);
  }
  table(['scenario', 'baseline', 'Ferry', 'ratio', 'target'], rows);
}
