// peers: the accept → run → deliver pipeline built the way a user would without Ferry, vs
// Ferry. Each pipeline: an HTTP route that enqueues a job and answers its id; a worker that
// runs the job (a trivial ping) and POSTs the JSON result to the callback URL with undici,
// retrying on failure through the queue. Same client for all: 32 connections, a fixed count,
// end-to-end throughput (webhooks received per second, first send → last webhook) and latency
// (send → webhook received) p50/p99. Every pipeline runs in its own process (bench/sut.js);
// the client and the receiver share this one.
//
// Library settings follow their documentation:
// - BullMQ: ioredis connection with `maxRetriesPerRequest: null` (required for workers),
//   `removeOnComplete: true` / bounded `removeOnFail` (recommended in production), `attempts: 3`
//   with exponential backoff, Worker `concurrency: 16` (between Ferry's defaults: 8 jobs per instance,
//   32 per node; every request here is for one instance).
// - pg-boss 10: a queue created with `createQueue`, `send` per request, 4 `work` workers with
//   `batchSize: 50` (a worker sleeps out its polling interval even after a full batch, so
//   throughput is capped near workers × batchSize / interval) at the shortest allowed
//   `pollingIntervalSeconds: 0.5`,
//   `retryLimit: 3`; a fresh database per run.
import { closedLoop, fmt, freshPgDatabase, mark, newPool, percentiles, startNode, startProcess, startReceiver, table, waitFor, PING } from './lib.js';

const COUNT = Number(process.env.BENCH_PEERS_COUNT ?? 5000);
const SECONDS = 15;
const CONNECTIONS = 32;
/**
 * Requests each system runs, and delivers, before the measured ones: as many as are measured.
 * With 300 (until session 13), a fresh Ferry node was measured while V8 was still compiling its
 * hot paths, on the API thread and again on the runner thread (a second isolate): its V8 helper
 * threads then burnt about as much CPU as its runner did, and a 5,000-request run measured
 * 1,900/s where the same node, warm, delivers 3,100-3,300/s. Every system gets the same warm-up.
 */
const WARMUP = Number(process.env.BENCH_PEERS_WARMUP ?? COUNT);

async function ferry(store) {
  const node = await startNode({ store });
  return { origin: node.origin, path: PING, auth: node.auth, ferry: true, close: () => node.close() };
}

async function measure(system, receiver) {
  const pool = newPool(system.origin, CONNECTIONS);
  const headers = system.ferry
    ? { authorization: system.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url }
    : { 'callback-url': receiver.url };
  const opts = () => ({ method: 'GET', path: system.path, headers });
  const ids = [];
  // Each system has a fresh receiver (peers() below): its count starts at 0.
  const warm = await closedLoop(pool, { count: WARMUP, seconds: SECONDS, connections: CONNECTIONS, opts });
  await waitFor(() => receiver.count >= warm.ok, 20_000);
  const load = await closedLoop(pool, {
    count: COUNT,
    seconds: SECONDS,
    connections: CONNECTIONS,
    opts,
    onBody: (i, status, text, sentAt) => {
      if (status === 200) {
        const b = JSON.parse(text);
        ids.push([String(b.eventId ?? b.id), sentAt]);
      }
    },
  });
  await waitFor(() => ids.every(([id]) => receiver.arrivals.has(id)), 20_000, 100);
  await pool.close();
  const lat = [];
  let last = 0;
  for (const [id, sentAt] of ids) {
    const at = receiver.arrivals.get(id);
    if (at === undefined) continue;
    lat.push(at - sentAt);
    last = Math.max(last, at);
  }
  const p = percentiles(lat);
  return { throughput: p.n / ((last - load.started) / 1000), accepted: ids.length, delivered: p.n, acceptRps: load.rps, p50: p.p50, p99: p.p99 };
}

export async function peers() {
  console.log(`\n## peers: accept → run → deliver, end to end (≤ ${COUNT} requests or ${SECONDS} s, ${CONNECTIONS} connections)\n`);
  const systems = [
    ['Fastify + BullMQ (Redis) + undici', () => startProcess('bullmq')],
    ['Fastify + pg-boss (PostgreSQL) + undici', async () => {
      const p = await startProcess('pgboss');
      if (!p.skipped) return p;
      await p.close();
      return null;
    }],
    ['Ferry (SQLite)', () => ferry('sqlite')],
    ['Ferry (PostgreSQL)', async () => ((await freshPgDatabase('probe').then((d) => d?.drop().then(() => true))) ? ferry('postgres') : null)],
  ];
  // BENCH_PEERS_SYSTEMS (e.g. "bullmq,ferry-postgres") runs some of them: bullmq, pgboss, ferry-sqlite, ferry-postgres.
  const only = process.env.BENCH_PEERS_SYSTEMS?.split(',');
  const keyOf = (label) => (label.startsWith('Ferry') ? `ferry-${label.includes('SQLite') ? 'sqlite' : 'postgres'}` : label.includes('BullMQ') ? 'bullmq' : 'pgboss');
  const results = {};
  for (const [label, start] of systems.filter(([label]) => !only || only.includes(keyOf(label)))) {
    const receiver = await startReceiver();
    let system = null;
    try {
      system = await start();
    } catch (e) {
      console.log(`${label}: could not start (${e.message}); skipped`);
    }
    if (system) {
      const r = (results[label] = await measure(system, receiver));
      console.log(`${label}: ${fmt(r.throughput)} webhooks/s, p99 ${fmt(r.p99, 1)} ms, ${r.delivered}/${r.accepted} delivered`);
      await system.close();
    }
    await receiver.close();
  }
  const rows = Object.entries(results).map(([label, r]) => [
    label,
    fmt(r.throughput),
    fmt(r.acceptRps),
    fmt(r.p50, 1),
    fmt(r.p99, 1),
    `${r.delivered}/${r.accepted}`,
  ]);
  table(['pipeline', 'end-to-end webhooks/s', 'accept req/s', 'p50 ms', 'p99 ms', 'delivered/accepted'], rows);
  const ferryBest = Math.max(...Object.entries(results).filter(([l]) => l.startsWith('Ferry')).map(([, r]) => r.throughput));
  const ratios = [];
  for (const [label, r] of Object.entries(results)) {
    if (label.startsWith('Ferry')) continue;
    for (const [fl, f] of Object.entries(results)) {
      if (!fl.startsWith('Ferry')) continue;
      const ratio = f.throughput / r.throughput;
      ratios.push([`${fl} vs ${label}`, `${fmt(ratio, 2)}×`, `≥ 1.5×: ${mark(ratio >= 1.5)}`]);
    }
  }
  console.log('');
  table(['comparison (throughput)', 'ratio', 'target'], ratios);
  void ferryBest;
}
