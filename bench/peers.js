// peers: the accept → run → deliver pipeline built the way a user would without Ferry, vs
// Ferry. Each pipeline: an HTTP route that enqueues a job and answers its id; a worker that
// runs the job (a trivial ping) and POSTs the JSON result to the callback URL with undici,
// retrying on failure through the queue. Same client for all: 32 connections, a fixed count,
// end-to-end throughput (webhooks received per second, first send → last webhook) and latency
// (send → webhook received) p50/p99.
//
// Library settings follow their documentation:
// - BullMQ: ioredis connection with `maxRetriesPerRequest: null` (required for workers),
//   `removeOnComplete: true` / bounded `removeOnFail` (recommended in production), `attempts: 3`
//   with exponential backoff, Worker `concurrency: 16` (Ferry's default FERRY_JOB_CONCURRENCY).
// - pg-boss 10: a queue created with `createQueue`, `send` per request, 4 `work` workers with
//   `batchSize: 50` (a worker sleeps out its polling interval even after a full batch, so
//   throughput is capped near workers × batchSize / interval) at the shortest allowed
//   `pollingIntervalSeconds: 0.5`,
//   `retryLimit: 3`; a fresh database per run.
import Fastify from 'fastify';
import { Agent, request } from 'undici';
import { closedLoop, fmt, freshPgDatabase, mark, newPool, now, percentiles, REDIS, startNode, startReceiver, table, waitFor, PING } from './lib.js';

const COUNT = Number(process.env.BENCH_PEERS_COUNT ?? 5000);
const SECONDS = 15;
const CONNECTIONS = 32;

/** What the job does: the same trivial ping as Ferry's `GET /hubs/documents/ping`, then the webhook. */
function makeJob() {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 64 });
  const run = async (id, callbackUrl) => {
    const response = { dateTime: new Date().toISOString(), endpoint: 'documents' };
    const res = await request(callbackUrl, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: String(id), eventStatus: 'completed', statusCode: 200, response }),
      headersTimeout: 15_000,
      bodyTimeout: 15_000,
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`webhook answered ${res.statusCode}`);
  };
  return { run, close: () => dispatcher.close() };
}

async function fastifyFront(enqueue) {
  const app = Fastify({ logger: false });
  app.get('/ping', async (req) => ({ id: String(await enqueue(String(req.headers['callback-url']))) }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, origin: `http://127.0.0.1:${app.server.address().port}` };
}

async function bullmq() {
  const { Queue, Worker } = await import('bullmq');
  const connection = { ...REDIS, maxRetriesPerRequest: null };
  const name = `bench-${process.pid}-${Date.now()}`;
  const queue = new Queue(name, {
    connection,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  });
  const job = makeJob();
  const worker = new Worker(name, async (j) => job.run(j.id, j.data.callbackUrl), { connection, concurrency: 16 });
  const front = await fastifyFront(async (callbackUrl) => (await queue.add('ping', { callbackUrl })).id);
  return {
    origin: front.origin,
    path: '/ping',
    async close() {
      await front.app.close();
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      await job.close();
    },
  };
}

async function pgboss() {
  const { default: PgBoss } = await import('pg-boss');
  const db = await freshPgDatabase('pgboss');
  if (!db) return null;
  const boss = new PgBoss({ connectionString: db.url });
  boss.on('error', () => {});
  await boss.start();
  const name = 'ping';
  await boss.createQueue(name, { retryLimit: 3, retryBackoff: true });
  const job = makeJob();
  for (let w = 0; w < 4; w++) {
    await boss.work(name, { batchSize: 50, pollingIntervalSeconds: 0.5 }, (jobs) => Promise.all(jobs.map((j) => job.run(j.id, j.data.callbackUrl))));
  }
  const front = await fastifyFront((callbackUrl) => boss.send(name, { callbackUrl }));
  return {
    origin: front.origin,
    path: '/ping',
    async close() {
      await front.app.close();
      await boss.stop({ graceful: true, wait: true, timeout: 5000 });
      await job.close();
      await db.drop();
    },
  };
}

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
  const warm = await closedLoop(pool, { count: 300, seconds: 2, connections: CONNECTIONS, opts });
  await waitFor(() => receiver.count >= warm.ok, 10_000);
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
    ['Fastify + BullMQ (Redis) + undici', bullmq],
    ['Fastify + pg-boss (PostgreSQL) + undici', pgboss],
    ['Ferry (SQLite)', () => ferry('sqlite')],
    ['Ferry (PostgreSQL)', async () => ((await freshPgDatabase('probe').then((d) => d?.drop().then(() => true))) ? ferry('postgres') : null)],
  ];
  const results = {};
  for (const [label, start] of systems) {
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
