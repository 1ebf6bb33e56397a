#!/usr/bin/env node
// Ferry benchmarks: `npm run bench` runs all, `npm run bench -- accept` runs one.
// Each benchmark starts what it needs on loopback, runs a bounded load, stops by itself, and
// prints the figure, its same-run baseline and the ratio. Run `npm run build` first.
import os from 'node:os';

const all = {
  accept: () => import('./accept.js').then((m) => m.accept()),
  'accept-metrics': () => import('./accept.js').then((m) => m.acceptMetrics()),
  latency: () => import('./latency.js').then((m) => m.latency()),
  isolation: () => import('./isolation.js').then((m) => m.isolation()),
  backlog: () => import('./backlog.js').then((m) => m.backlog()),
  copy: () => import('./copy.js').then((m) => m.copy()),
  upload: () => import('./upload.js').then((m) => m.upload()),
  peers: () => import('./peers.js').then((m) => m.peers()),
  start: () => import('./start.js').then((m) => m.start()),
  cpu: () => import('./cpu.js').then((m) => m.cpu()),
  changes: () => import('./changes.js').then((m) => m.changes()),
  unseal: () => import('./unseal.js').then((m) => m.unseal()),
  'pg-statements': () => import('./pg-statements.js').then((m) => m.pgStatements()),
  bulk: () => import('./bulk.js').then((m) => m.bulk()),
};
const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : Object.keys(all);
for (const name of names) {
  if (!all[name]) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
}
// A rejection escaping the server under test (e.g. during shutdown) is reported, not fatal, so
// one defect does not hide the other benchmarks' tables.
process.on('unhandledRejection', (e) => console.error(`[unhandled rejection] ${e?.stack?.split('\n').slice(0, 4).join(' | ') ?? e}`));
const started = Date.now();
console.log(`# Ferry benchmarks — node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (const name of names) {
  const t = Date.now();
  await all[name]();
  console.log(`\n(${name}: ${((Date.now() - t) / 1000).toFixed(0)} s)`);
}
console.log(`\ntotal: ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(0);
