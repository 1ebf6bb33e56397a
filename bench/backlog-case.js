// One side of the backlog benchmark, in its own process so its RSS is its own: a Ferry node
// with role `api` (no runner: the backlog stays) and `BACKLOG` events inserted straight through
// the store API in batches of 1,000 (HTTP would take far longer). The parent (backlog.js) then
// asks it, over IPC, for measuring segments — HTTP accepts, store claims — alternating with the
// other side's, and finally for its RSS. Every answer is one message.
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

const segments = {
  /** HTTP async accepts for up to `seconds`. */
  async accept({ seconds, count }) {
    const r = await closedLoop(pool, { count, seconds, connections: 32, opts });
    return { ok: r.ok, seconds: r.seconds };
  },
  /**
   * Claims in batches of 100 (FERRY_JOB_CONCURRENCY-sized claims are 16; 100 amortises the
   * call), no per-instance cap, for up to `seconds` or `count` jobs.
   */
  async claim({ seconds, count }) {
    let ok = 0;
    const c0 = now();
    while (ok < count && now() - c0 < seconds * 1000) {
      const jobs = await store.claimJobs('bench-claimer', 100, 600_000, 1e9);
      if (jobs.length === 0) break;
      ok += jobs.length;
    }
    return { ok, seconds: (now() - c0) / 1000 };
  },
  async rss() {
    global.gc?.();
    return { rssAfter: process.memoryUsage().rss };
  },
  async close() {
    await pool.close();
    await node.close();
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', async ({ segment, ...args }) => process.send(await segments[segment](args)));
process.send({ inserted, insertSeconds, rssBefore });
