// backlog: HTTP accept rate, store claim rate and process RSS with a big backlog of stored
// events vs an empty store. Each side runs in its own node process (backlog-case.js) so the
// RSS figures are that process's alone. The backlog is inserted through the store API; if
// 1,000,000 events do not fit the time budget the run says how many it stored. Both sides stay
// up and are measured in alternating segments (empty, backlog, empty …), so the machine's drift
// over the run falls on both alike.
import { fork } from 'node:child_process';
import { combined, fmt, mark, pct, table } from './lib.js';

const TARGET = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
const BUDGET_MS = Number(process.env.BENCH_BACKLOG_BUDGET_MS ?? 100_000);
const ROUNDS = 3;
const script = new URL('./backlog-case.js', import.meta.url);

/** Starts one side; resolves once its backlog is inserted, with a function that runs segments. */
function startCase(count) {
  const child = fork(script, [String(count), String(BUDGET_MS)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const next = () =>
    new Promise((resolve, reject) => {
      const fail = (code) => reject(new Error(`backlog case exited with code ${code}`));
      child.once('exit', fail);
      child.once('message', (m) => {
        child.off('exit', fail);
        resolve(m);
      });
    });
  return next().then((ready) => ({
    ready,
    run: (segment, args = {}) => {
      const answer = next();
      child.send({ segment, ...args });
      return answer;
    },
    exited,
  }));
}

/** Runs `segment` on both sides in ROUNDS alternating rounds; rate per side. */
async function alternate(sides, segment, args) {
  const runs = sides.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    for (const [k, side] of sides.entries()) runs[k].push(await side.run(segment, args));
  }
  return runs.map((r) => combined(r).rps);
}

export async function backlog() {
  console.log(
    `\n## backlog: accept and claim with a stored backlog vs an empty store (SQLite; target ${TARGET.toLocaleString('en')} events, insert budget ${BUDGET_MS / 1000} s; ${ROUNDS} alternating rounds)\n`,
  );
  const [emptySide, bigSide] = await Promise.all([startCase(0), startCase(TARGET)]);
  const sides = [emptySide, bigSide];
  const [emptyAccept, bigAccept] = await alternate(sides, 'accept', { seconds: 2, count: 7000 });
  const [emptyClaim, bigClaim] = await alternate(sides, 'claim', { seconds: 1.5, count: 3300 });
  const [emptyRss, bigRss] = await Promise.all(sides.map((s) => s.run('rss')));
  await Promise.all(sides.map((s) => s.run('close').then(() => s.exited)));
  const empty = { ...emptySide.ready, ...emptyRss, acceptRps: emptyAccept, claimRps: emptyClaim };
  const big = { ...bigSide.ready, ...bigRss, acceptRps: bigAccept, claimRps: bigClaim };
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
