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
import { PING, closedLoop, combined, cpuMs, fmt, freshPgDatabase, mark, median, newPool, pct, startNode, startReceiver, table, waitFor } from './lib.js';

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
  // BENCH_ACCEPT_CASES (e.g. "postgres" or "sqlite-normal,postgres") runs some of the cases.
  const only = process.env.BENCH_ACCEPT_CASES?.split(',');
  const wanted = (name) => !only || only.includes(name);
  const cases = [
    ['sqlite', 'normal'],
    ['sqlite', 'fsync'],
  ].filter(([store, durability]) => wanted(`${store}-${durability}`));
  const probe = wanted('postgres') ? await freshPgDatabase('probe') : null;
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
  if (!probe && wanted('postgres')) console.log('\nPostgreSQL not reachable: skipped.');
}

// accept-metrics: what metrics cost (issue 14). Two SQLite nodes, one with metrics on (the
// default) and one with FERRY_METRICS=off, each in its own process, each with its own pool of
// the same size from this one client, webhooks to one receiver. In each round both nodes are
// loaded at the same time, for the same seconds: whatever else the machine is doing then falls
// on both alike, so the round's ratio holds on a noisy machine where rounds taken one after the
// other differed by ±25 % (session 6). Two figures per round: throughput (on / off), and what
// it costs — CPU milliseconds per accepted request of each node's whole process (its runner
// thread and webhook sends included; /proc/<pid>/stat), as off's cost / on's, so that both read
// "on gets this share of what off gets". The second does not depend on the client keeping up.
// Each round's webhooks are delivered before the next starts; the node with metrics on is
// scraped once per round (as Prometheus would), outside the measured time. The figure is the
// median of the rounds' ratios, with their spread. Target: on ≥ 95 % of off.
const METRICS_ROUNDS = Number(process.env.BENCH_METRICS_ROUNDS ?? 7);
const METRICS_SECONDS = Number(process.env.BENCH_METRICS_SECONDS ?? 3);
// BENCH_METRICS_CONTROL=on|off runs both nodes with metrics on (or both off): an A/A control of
// what the set-up itself puts between the two nodes (start order, placement on the cores).
const METRICS_CONTROL = process.env.BENCH_METRICS_CONTROL;


export async function acceptMetrics() {
  console.log(
    `\n## accept-metrics: async accept, metrics on vs FERRY_METRICS=off (SQLite, ${CONNECTIONS / 2} connections to each node at once, ${METRICS_ROUNDS} rounds of ${METRICS_SECONDS} s)\n`,
  );
  const receiver = await startReceiver();
  if (METRICS_CONTROL) console.log(`A/A control (BENCH_METRICS_CONTROL): metrics ${METRICS_CONTROL} on both nodes; "on" and "off" below name the nodes only\n`);
  const on = await startNode({ store: 'sqlite', env: { FERRY_METRICS: METRICS_CONTROL ?? 'on' } });
  const off = await startNode({ store: 'sqlite', env: { FERRY_METRICS: METRICS_CONTROL ?? 'off' } });
  const nodes = { on, off };
  const half = CONNECTIONS / 2;
  const pools = { on: newPool(on.origin, half), off: newPool(off.origin, half) };
  const request = (node) => ({
    method: 'GET',
    path: PING,
    headers: { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
  });
  let accepted = 0;
  let acceptedOn = 0;
  /** One round: both nodes loaded at once; each one's accepted count, rate and CPU ms. */
  const round = async (seconds, count) => {
    const cpuBefore = { on: cpuMs(`/proc/${on.pid}/stat`), off: cpuMs(`/proc/${off.pid}/stat`) };
    const [a, b] = await Promise.all(
      ['on', 'off'].map((k) => closedLoop(pools[k], { count, seconds, connections: half, opts: () => request(nodes[k]) })),
    );
    // The round's jobs and webhooks belong to its cost: wait for them before reading the CPU.
    accepted += a.ok + b.ok;
    acceptedOn += a.ok;
    const drained = await waitFor(() => receiver.count >= accepted, 30_000);
    const cpu = { on: cpuMs(`/proc/${on.pid}/stat`) - cpuBefore.on, off: cpuMs(`/proc/${off.pid}/stat`) - cpuBefore.off };
    await (await fetch(`${on.origin}/metrics`)).text();
    return { on: a, off: b, cpu, drained };
  };
  let drained = (await round(1, 3000)).drained; // warm-up (JIT, pools, caches)
  const rounds = [];
  for (let i = 0; i < METRICS_ROUNDS; i++) {
    const r = await round(METRICS_SECONDS, 100_000);
    drained = r.drained && drained;
    rounds.push(r);
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
  const rate = rounds.map((r) => r.on.rps / r.off.rps);
  const perAccept = (r, k) => r.cpu[k] / r[k].ok;
  const cost = rounds.map((r) => perAccept(r, 'off') / perAccept(r, 'on'));
  const spread = (v) => `${pct(Math.min(...v))}–${pct(Math.max(...v))}`;
  table(
    ['measure', 'metrics off (baseline)', 'metrics on', 'on / off: median of rounds', 'spread', 'target'],
    [
      ['accepts/s, both loaded at once', fmt(median(rounds.map((r) => r.off.rps))), fmt(median(rounds.map((r) => r.on.rps))), pct(median(rate)), spread(rate), `≥ 95 %: ${mark(median(rate) >= 0.95)}`],
      [
        'CPU ms per accept (process: accept, job, webhook), as off / on',
        fmt(median(rounds.map((r) => perAccept(r, 'off'))), 3),
        fmt(median(rounds.map((r) => perAccept(r, 'on'))), 3),
        pct(median(cost)),
        spread(cost),
        `≥ 95 %: ${mark(median(cost) >= 0.95)}`,
      ],
    ],
  );
  console.log(`\naccepts counted by /metrics / made on the node with metrics on: ${counted}/${acceptedOn}${drained ? '' : ' (a round did not drain within 30 s)'}`);
  console.log(`per round, on/off: rate ${rate.map(pct).join(', ')}; cost ${cost.map(pct).join(', ')}`);
}
