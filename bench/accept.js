// accept: async `GET /hubs/documents/ping` vs sync `GET /hubs/documents/ping` on the same server,
// same client (undici Pool, 32 connections, no pipelining), bounded by count and time. The async
// callback goes to a local receiver that answers 200; the runner and sender run in the same
// process (role all), as a user would deploy one node. SQLite with both durabilities, and
// PostgreSQL (a fresh database) when it is reachable.
import { PING, closedLoop, fmt, freshPgDatabase, mark, newPool, pct, startNode, startReceiver, table, waitFor } from './lib.js';

const CONNECTIONS = 32;
const COUNT = 20_000;
const SECONDS = 6;

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
  const syncRun = await closedLoop(pool, { count: COUNT, seconds: SECONDS, connections: CONNECTIONS, opts: () => sync });
  const asyncRun = await closedLoop(pool, { count: COUNT, seconds: SECONDS, connections: CONNECTIONS, opts: () => asyncOpts });
  await waitFor(() => receiver.count >= asyncRun.ok, 20_000);
  const delivered = receiver.count;
  await pool.close();
  await node.close();
  await receiver.close();
  return { syncRun, asyncRun, delivered };
}

export async function accept() {
  console.log(`\n## accept: async accept vs sync ping, same server and client (${CONNECTIONS} connections, ≤ ${COUNT} requests or ${SECONDS} s each)\n`);
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
    const { syncRun, asyncRun, delivered } = await run(store, durability);
    const ratio = asyncRun.rps / syncRun.rps;
    rows.push([
      store,
      store === 'postgres' ? '(server default)' : durability,
      fmt(syncRun.rps),
      fmt(asyncRun.rps),
      pct(ratio),
      store === 'sqlite' && durability === 'normal' ? `≥ 70 %: ${mark(ratio >= 0.7)}` : 'reported',
      `${delivered}/${asyncRun.ok} in ≤ 20 s`,
    ]);
  }
  table(['store', 'durability', 'sync ping req/s (baseline)', 'async accept req/s', 'ratio', 'target', 'webhooks delivered'], rows);
  if (!probe) console.log('\nPostgreSQL not reachable: skipped.');
}
