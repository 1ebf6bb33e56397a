// latency: open-loop load at a fixed arrival rate; latency counted from each request's
// *scheduled* send time (so a slow server cannot hide queueing by slowing the client) to the
// webhook's arrival at a local receiver. Ferry on SQLite, role all, one process.
import { PING, fmt, mark, newPool, now, percentiles, sleep, startNode, startReceiver, table, waitFor } from './lib.js';

const RATE = Number(process.env.BENCH_LATENCY_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 10);
const CONNECTIONS = 128;

/** Fires `total` requests at `rate`/s from `t0`; returns per-request {scheduled, eventId, status}. */
async function openLoop(pool, rate, total, opts) {
  const results = new Array(total);
  const inflight = [];
  const t0 = now() + 20;
  let next = 0;
  while (next < total) {
    const t = now();
    while (next < total && t0 + (next * 1000) / rate <= t) {
      const i = next++;
      const scheduled = t0 + (i * 1000) / rate;
      inflight.push(
        pool
          .request(opts)
          .then(async (res) => {
            const body = await res.body.text();
            results[i] = { scheduled, status: res.statusCode, eventId: res.statusCode === 200 ? String(JSON.parse(body).eventId) : null };
          })
          .catch((e) => (results[i] = { scheduled, status: 0, eventId: null, error: e.message })),
      );
    }
    await sleep(1);
  }
  await Promise.all(inflight);
  return results;
}

export async function latency() {
  const total = RATE * SECONDS;
  console.log(`\n## latency: open loop, ${RATE} requests/s for ${SECONDS} s (${total} requests), scheduled send → webhook received\n`);
  const receiver = await startReceiver();
  const node = await startNode({});
  const pool = newPool(node.origin, CONNECTIONS);
  const opts = {
    method: 'GET',
    path: PING,
    headers: { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
  };
  // Warm-up at half the rate for 2 s (JIT, connections, page cache), not measured.
  const warm = await openLoop(pool, RATE / 2, RATE, opts);
  await waitFor(() => receiver.count >= warm.filter((r) => r.status === 200).length, 10_000);
  const results = await openLoop(pool, RATE, total, opts);
  const accepted = results.filter((r) => r.status === 200);
  await waitFor(() => accepted.every((r) => receiver.arrivals.has(r.eventId)), 30_000, 100);
  const lat = [];
  for (const r of accepted) {
    const at = receiver.arrivals.get(r.eventId);
    if (at !== undefined) lat.push(at - r.scheduled);
  }
  const p = percentiles(lat);
  await pool.close();
  await node.close();
  await receiver.close();
  table(
    ['figure', 'measured', 'target', 'verdict'],
    [
      ['p50 (ms)', fmt(p.p50, 1), '≤ 5', mark(p.p50 <= 5)],
      ['p90 (ms)', fmt(p.p90, 1), '', ''],
      ['p99 (ms)', fmt(p.p99, 1), '≤ 25', mark(p.p99 <= 25)],
      ['max (ms)', fmt(p.max, 1), '', ''],
    ],
  );
  const balanced = results.length === accepted.length && accepted.length === p.n;
  console.log(`\nledger: sent ${results.length}, accepted ${accepted.length}, delivered ${p.n} → ${balanced ? 'balances' : 'DOES NOT balance'}`);
}
