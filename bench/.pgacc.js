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

export async function pgOnly() { const r = await run("postgres", "normal"); console.log(JSON.stringify({ sync: Math.round(r.syncRun.rps), async: Math.round(r.asyncRun.rps), ratio: (r.asyncRun.rps / r.syncRun.rps).toFixed(3), delivered: r.delivered })); }
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
}
