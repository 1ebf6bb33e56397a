// accept: async `GET /hubs/documents/ping` vs sync `GET /hubs/documents/ping` on the same server,
// same client (undici Pool, 32 connections, no pipelining), bounded by count and time. The async
// callback goes to a local receiver that answers 200; the runner and sender run in the same
// process (role all), as a user would deploy one node. SQLite with both durabilities, and
// PostgreSQL (a fresh database) when it is reachable.
//
// The two are measured in alternating rounds (sync, async, sync, async …), and each async round's
// webhooks are all delivered before the next sync round starts: this machine's speed drifts by
// tens of percent within a minute, which alternation evens out, and no sync round ever shares the
// CPU with the previous round's jobs.
import { PING, closedLoop, combined, fmt, freshPgDatabase, mark, newPool, pct, startNode, startReceiver, table, waitFor } from './lib.js';

const CONNECTIONS = 32;
const COUNT = 20_000;
const SECONDS = 6;
const ROUNDS = 3;

async function run(store, durability) {
  const receiver = await startReceiver();
  const node = await startNode({ store, env: { FERRY_DURABILITY: durability } });
  const pool = newPool(node.origin, CONNECTIONS);
  const sync = { method: 'GET', path: PING, headers: { authorization: node.auth } };
  const asyncOpts = {
    method: 'GET',
    path: PING,
    headers: { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
  };
  await closedLoop(pool, { count: 2000, seconds: 1, connections: CONNECTIONS, opts: () => sync }); // warm-up
  const round = { count: Math.floor(COUNT / ROUNDS), seconds: SECONDS / ROUNDS, connections: CONNECTIONS };
  const syncRuns = [];
  const asyncRuns = [];
  let drained = true;
  for (let i = 0; i < ROUNDS; i++) {
    syncRuns.push(await closedLoop(pool, { ...round, opts: () => sync }));
    asyncRuns.push(await closedLoop(pool, { ...round, opts: () => asyncOpts }));
    const accepted = combined(asyncRuns).ok;
    drained = (await waitFor(() => receiver.count >= accepted, 20_000)) && drained;
  }
  const delivered = receiver.count;
  await pool.close();
  await node.close();
  await receiver.close();
  return { syncRun: combined(syncRuns), asyncRun: combined(asyncRuns), delivered, drained };
}

export async function accept() {
  console.log(
    `\n## accept: async accept vs sync ping, same server and client (${CONNECTIONS} connections, ≤ ${COUNT} requests or ${SECONDS} s each, in ${ROUNDS} alternating rounds)\n`,
  );
  const rows = [];
  const cases = [
    ['sqlite', 'normal'],
    ['sqlite', 'fsync'],
  ];
  const probe = await freshPgDatabase('probe');
  if (probe) {
    await probe.drop();
    cases.push(['postgres', 'normal']);
  }
  for (const [store, durability] of cases) {
    const { syncRun, asyncRun, delivered, drained } = await run(store, durability);
    const ratio = asyncRun.rps / syncRun.rps;
    rows.push([
      store,
      store === 'postgres' ? '(server default)' : durability,
      fmt(syncRun.rps),
      fmt(asyncRun.rps),
      pct(ratio),
      store === 'sqlite' && durability === 'normal' ? `≥ 70 %: ${mark(ratio >= 0.7)}` : 'reported',
      `${delivered}/${asyncRun.ok}${drained ? '' : ' (a round did not drain within 20 s)'}`,
    ]);
  }
  table(['store', 'durability', 'sync ping req/s (baseline)', 'async accept req/s', 'ratio', 'target', 'webhooks delivered'], rows);
  if (!probe) console.log('\nPostgreSQL not reachable: skipped.');
  await acceptMetrics();
}

// accept-metrics: what metrics cost (issue 14). Two SQLite nodes, one with metrics on (the
// default) and one with FERRY_METRICS=off, each in its own process; async accept rounds
// alternate between them (on, off, on, off …), each round's webhooks delivered before the
// next, with the same client. The node with metrics on is scraped once per round (as
// Prometheus would), outside the measured time. Target: on ≥ 95 % of off.
const METRICS_ROUNDS = Number(process.env.BENCH_METRICS_ROUNDS ?? 4);
const METRICS_SECONDS = Number(process.env.BENCH_METRICS_SECONDS ?? 2);

export async function acceptMetrics() {
  console.log(
    `\n## accept-metrics: async accept, metrics on vs FERRY_METRICS=off (SQLite, ${CONNECTIONS} connections, ${METRICS_ROUNDS} alternating rounds of ≤ ${METRICS_SECONDS} s each)\n`,
  );
  const receiver = await startReceiver();
  const on = await startNode({ store: 'sqlite', env: {} });
  const off = await startNode({ store: 'sqlite', env: { FERRY_METRICS: 'off' } });
  const nodes = { on, off };
  const pools = { on: newPool(on.origin, CONNECTIONS), off: newPool(off.origin, CONNECTIONS) };
  const request = (node) => ({
    method: 'GET',
    path: PING,
    headers: { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
  });
  const runs = { on: [], off: [] };
  let accepted = 0;
  let acceptedOn = 0;
  for (const k of ['on', 'off']) {
    const warm = (await closedLoop(pools[k], { count: 2000, seconds: 1, connections: CONNECTIONS, opts: () => request(nodes[k]) })).ok; // warm-up
    accepted += warm;
    if (k === 'on') acceptedOn += warm;
  }
  let drained = await waitFor(() => receiver.count >= accepted, 20_000);
  for (let i = 0; i < METRICS_ROUNDS; i++) {
    for (const k of i % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
      const run = await closedLoop(pools[k], { count: 50_000, seconds: METRICS_SECONDS, connections: CONNECTIONS, opts: () => request(nodes[k]) });
      runs[k].push(run);
      accepted += run.ok;
      if (k === 'on') acceptedOn += run.ok;
      drained = (await waitFor(() => receiver.count >= accepted, 20_000)) && drained;
      if (k === 'on') await (await fetch(`${on.origin}/metrics`)).text();
    }
  }
  const scrape = await (await fetch(`${on.origin}/metrics`)).text();
  const counted = scrape
    .split('\n')
    .filter((l) => l.startsWith('ferry_events_accepted_total'))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  await pools.on.close();
  await pools.off.close();
  await on.close();
  await off.close();
  await receiver.close();
  const a = combined(runs.on);
  const b = combined(runs.off);
  const ratio = a.rps / b.rps;
  table(
    ['store', 'metrics off req/s (baseline)', 'metrics on req/s', 'ratio', 'target', 'accepts counted by /metrics / made (node with metrics on)'],
    [['sqlite', fmt(b.rps), fmt(a.rps), pct(ratio), `≥ 95 %: ${mark(ratio >= 0.95)}`, `${counted}/${acceptedOn}${drained ? '' : ' (a round did not drain within 20 s)'}`]],
  );
  console.log(`\nper round (req/s): on ${runs.on.map((r) => fmt(r.rps)).join(', ')}; off ${runs.off.map((r) => fmt(r.rps)).join(', ')}`);
}
