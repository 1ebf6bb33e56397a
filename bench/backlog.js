// backlog: HTTP accept rate, store claim rate and process RSS with a big backlog of stored
// events vs an empty store. Each side runs in its own node process (backlog-case.js) so the
// RSS figures are that process's alone. The backlog is inserted through the store API; if
// 1,000,000 events do not fit the time budget the run says how many it stored.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fmt, mark, pct, table } from './lib.js';

const TARGET = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
const BUDGET_MS = Number(process.env.BENCH_BACKLOG_BUDGET_MS ?? 100_000);
const script = fileURLToPath(new URL('./backlog-case.js', import.meta.url));

function runCase(count) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', script, String(count), String(BUDGET_MS)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

export async function backlog() {
  console.log(`\n## backlog: accept and claim with a stored backlog vs an empty store (SQLite; target ${TARGET.toLocaleString('en')} events, insert budget ${BUDGET_MS / 1000} s)\n`);
  const empty = await runCase(0);
  const big = await runCase(TARGET);
  const mb = (b) => fmt(b / 2 ** 20);
  const accept = big.acceptRps / empty.acceptRps;
  const claim = big.claimRps / empty.claimRps;
  const rss = big.rssAfter / empty.rssAfter;
  table(
    ['figure', 'empty store (baseline)', `backlog of ${big.inserted.toLocaleString('en')}`, 'ratio', 'target'],
    [
      ['HTTP async accept req/s', fmt(empty.acceptRps), fmt(big.acceptRps), pct(accept), `≥ 80 %: ${mark(accept >= 0.8)}`],
      ['store claim jobs/s (batches of 100)', fmt(empty.claimRps), fmt(big.claimRps), pct(claim), `≥ 80 %: ${mark(claim >= 0.8)}`],
      ['RSS after measuring (MiB)', mb(empty.rssAfter), mb(big.rssAfter), pct(rss), `flat (≤ 120 %): ${mark(rss <= 1.2)}`],
    ],
  );
  console.log(
    `\nbacklog inserted through store.acceptEvents in batches of 1,000: ${big.inserted.toLocaleString('en')} events in ${fmt(big.insertSeconds)} s` +
      (big.inserted < TARGET ? ` (stopped at the ${BUDGET_MS / 1000} s budget, short of ${TARGET.toLocaleString('en')})` : '') +
      `; RSS right after inserting ${mb(big.rssBefore)} MiB (empty: ${mb(empty.rssBefore)} MiB).`,
  );
}
