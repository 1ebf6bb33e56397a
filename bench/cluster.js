// cluster: accept and end-to-end rates of 1, 2 and 3 Ferry nodes (`ferry serve --role all`, child
// processes) on one PostgreSQL schema, same load each, one run each. The load: COUNT async
// `GET /hubs/documents/ping` over INSTANCES localfs instances (per-instance concurrency, default 4,
// holds across the cluster: one instance alone would cap every cluster size at 4 running jobs)
// from CONNECTIONS clients spread round-robin over the nodes' ports (closed loop, bounded by SECONDS); the callbacks go to one local receiver.
// accept req/s = acknowledged requests / accept phase; end-to-end = webhooks delivered / time
// from the first request to the last webhook. Needs a build (uses dist/test/helpers/cluster.js).
import { fmt, newPool, now, startReceiver, table, waitFor, PING } from './lib.js';
import { clusterSkipReason, startCluster } from '../dist/test/helpers/cluster.js';
import { PLATFORM_AUTH, USER_SECRET } from '../dist/test/helpers/server.js';

const COUNT = Number(process.env.BENCH_CLUSTER_COUNT ?? 3000);
const SECONDS = 15;
const CONNECTIONS = 24;
const DRAIN_MS = 60_000;
const INSTANCES = 12;

async function run(nodes) {
  const receiver = await startReceiver();
  const cluster = await startCluster(Array(nodes).fill('all'));
  try {
    const origins = cluster.nodes.map((n) => new URL(n.base).origin);
    const auths = await createBenchInstances(origins[0], INSTANCES);
    const pools = origins.map((o) => newPool(o, Math.ceil(CONNECTIONS / nodes)));
    const opts = auths.map((authorization) => ({
      method: 'GET',
      path: PING,
      headers: { authorization, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
    }));
    let sent = 0;
    let ok = 0;
    let failed = 0;
    const started = now();
    const stopAt = started + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, c) => {
        const pool = pools[c % nodes];
        while (sent < COUNT && now() < stopAt) {
          const i = sent++;
          try {
            const res = await pool.request(opts[i % INSTANCES]);
            await res.body.dump();
            if (res.statusCode === 200) ok++;
            else failed++;
          } catch {
            failed++;
          }
        }
      }),
    );
    const acceptSecs = (now() - started) / 1000;
    const drained = await waitFor(() => receiver.arrivals.size >= ok, DRAIN_MS, 20);
    const endSecs = ((drained ? receiver.lastAt : now()) - started) / 1000;
    await Promise.all(pools.map((p) => p.close()));
    return { nodes, ok, failed, acceptRps: ok / acceptSecs, acceptSecs, delivered: receiver.arrivals.size, e2eRps: receiver.arrivals.size / endSecs, endSecs, drained };
  } finally {
    await cluster.close();
    await receiver.close();
  }
}

export async function clusterBench() {
  console.log(`\n## cluster: 1, 2, 3 nodes on one PostgreSQL schema (${COUNT} async pings on ${INSTANCES} instances or ${SECONDS} s, ${CONNECTIONS} connections spread over the nodes)\n`);
  const reason = await clusterSkipReason();
  if (reason) {
    console.log(`skipped: ${reason}`);
    return;
  }
  const rows = [];
  for (const nodes of [1, 2, 3]) {
    const r = await run(nodes);
    rows.push([
      String(nodes),
      `${r.ok}${r.failed ? ` (+${r.failed} failed)` : ''}`,
      `${fmt(r.acceptRps)} (${fmt(r.acceptSecs, 1)} s)`,
      `${fmt(r.e2eRps)} (${fmt(r.endSecs, 1)} s)`,
      `${r.delivered}/${r.ok}${r.drained ? '' : ` (not drained in ${DRAIN_MS / 1000} s)`}`,
    ]);
  }
  table(['nodes', 'accepted', 'accept req/s', 'end-to-end completions/s', 'webhooks delivered'], rows);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  clusterBench().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

/** Creates `count` localfs instances through `origin`; returns their hub Authorization values. */
export async function createBenchInstances(origin, count) {
  const auths = [];
  for (let i = 0; i < count; i++) {
    const created = await fetch(`${origin}/elements/api-v2/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ element: { key: 'localfs' }, name: `bench${i}`, configuration: { root: `bench${i}` } }),
    });
    const instance = await created.json();
    if (created.status !== 200) throw new Error(`instance creation failed: ${created.status} ${JSON.stringify(instance)}`);
    auths.push(`User ${USER_SECRET}, Element ${instance.token}`);
  }
  return auths;
}
