// One side of the backlog benchmark, in its own process so its RSS is its own: a Ferry node
// with role `api` (no runner: the backlog stays), `BACKLOG` events inserted straight through
// the store API in batches of 1,000 (HTTP would take far longer), then the HTTP accept rate and
// the store's claim rate. Prints one JSON line.
import { PING, closedLoop, newPool, now, startNode } from './lib.js';

const target = Number(process.argv[2] ?? 0);
const insertBudgetMs = Number(process.argv[3] ?? 100_000);
const node = await startNode({ env: { FERRY_ROLE: 'api' }, inProcess: true });
const store = node.ferry.store;
const [inst] = await store.allInstances();
const input = (i) => ({
  organizationId: inst.organizationId,
  userId: inst.userId,
  instanceId: inst.id,
  callbackUrl: 'http://127.0.0.1:9/hook',
  idempotencyKey: null,
  request: { method: 'GET', url: PING, headers: { accept: 'application/json', 'user-agent': `bench-${i}` } },
  body: null,
});
let inserted = 0;
const t0 = now();
while (inserted < target && now() - t0 < insertBudgetMs) {
  const batch = Array.from({ length: Math.min(1000, target - inserted) }, (_, k) => input(inserted + k));
  await store.acceptEvents(batch);
  inserted += batch.length;
}
const insertSeconds = (now() - t0) / 1000;
global.gc?.();
const rssBefore = process.memoryUsage().rss;

const pool = newPool(node.origin, 32);
const headers = { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': 'http://127.0.0.1:9/hook' };
const opts = () => ({ method: 'GET', path: PING, headers });
await closedLoop(pool, { count: 1000, seconds: 1, connections: 32, opts }); // warm-up
const acc = await closedLoop(pool, { count: 20_000, seconds: 6, connections: 32, opts });
await pool.close();

// Claim: batches of 100 (FERRY_JOB_CONCURRENCY-sized claims are 16; 100 amortises the call),
// no per-instance cap, until 10,000 jobs or 5 s.
let claimed = 0;
const c0 = now();
while (claimed < 10_000 && now() - c0 < 5000) {
  const jobs = await store.claimJobs('bench-claimer', 100, 600_000, 1e9);
  if (jobs.length === 0) break;
  claimed += jobs.length;
}
const claimSeconds = (now() - c0) / 1000;
global.gc?.();
const rssAfter = process.memoryUsage().rss;
await node.close();
console.log(
  JSON.stringify({ inserted, insertSeconds, acceptRps: acc.rps, accepted: acc.ok, claimRps: claimed / claimSeconds, claimed, rssBefore, rssAfter }),
);
process.exit(0);
