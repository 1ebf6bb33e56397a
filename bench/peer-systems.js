// The peers' pipelines for bench/peers.js, each started in its own process by bench/sut.js:
// what a user would build without Ferry. Each: an HTTP route that enqueues a job and answers
// its id; a worker that runs the job (a trivial ping) and POSTs the JSON result to the callback
// URL with undici, retrying on failure through the queue. Settings: see bench/peers.js.
import Fastify from 'fastify';
import { Agent, request } from 'undici';
import { freshPgDatabase, REDIS } from './lib.js';

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

export async function bullmq() {
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

export async function pgboss() {
  const { default: PgBoss } = await import('pg-boss');
  const db = await freshPgDatabase('pgboss');
  if (!db) return { skipped: true, close: async () => {} };
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

