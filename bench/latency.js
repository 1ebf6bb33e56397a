// latency: open-loop load at a fixed arrival rate; latency counted from each request's
// *scheduled* send time (so a slow server cannot hide queueing by slowing the client) to the
// webhook's arrival at a local receiver. Ferry on SQLite, role all, one process.
import { PING, fmt, mark, newPool, now, percentiles, sleep, startNode, startReceiver, table, waitFor, openLoop } from './lib.js';

const RATE = Number(process.env.BENCH_LATENCY_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 30);
const CONNECTIONS = 128;
/** The run below the target rate, to show the pipeline with headroom. */
const LOW_SECONDS = Math.min(5, SECONDS / 2);


/** One open-loop run at `rate` for `seconds` on a warm node; latencies and the ledger. */
async function measure(pool, receiver, opts, rate, seconds) {
  const results = await openLoop(pool, rate, rate * seconds, opts);
  const accepted = results.filter((r) => r.status === 200);
  await waitFor(() => accepted.every((r) => receiver.arrivals.has(r.eventId)), 30_000, 100);
  const lat = [];
  const answer = [];
  const after = [];
  for (const r of accepted) {
    const at = receiver.arrivals.get(r.eventId);
    if (at === undefined) continue;
    lat.push(at - r.scheduled);
    answer.push(r.answered - r.scheduled);
    after.push(at - r.answered);
  }
  const p = percentiles(lat);
  // Where the time went: scheduled send → accept answered, and answered → webhook received.
  return { p, answer: percentiles(answer), after: percentiles(after), sent: results.length, accepted: accepted.length, balanced: results.length === accepted.length && accepted.length === p.n };
}

export async function latency() {
  const low = Math.round(RATE / 4);
  console.log(
    `\n## latency: open loop, ${RATE} requests/s for ${SECONDS} s (${RATE * SECONDS} requests), then ${low}/s for ${LOW_SECONDS} s (reported), scheduled send → webhook received\n`,
  );
  const receiver = await startReceiver();
  const node = await startNode({});
  const pool = newPool(node.origin, CONNECTIONS);
  const opts = {
    method: 'GET',
    path: PING,
    headers: { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
  };
  // Warm-up, not measured (JIT, connections, page cache, heap sizes): 1 s at half the rate,
  // then 2 s at the rate itself, so the measured run does not start with a step in load.
  let warmed = 0;
  for (const [rate, count] of [[RATE / 2, RATE / 2], [RATE, 2 * RATE]]) {
    const warm = await openLoop(pool, rate, count, opts);
    warmed += warm.filter((r) => r.status === 200).length;
  }
  await waitFor(() => receiver.count >= warmed, 10_000);
  const target = await measure(pool, receiver, opts, RATE, SECONDS);
  const below = await measure(pool, receiver, opts, low, LOW_SECONDS);
  await pool.close();
  await node.close();
  await receiver.close();
  const row = (label, m, verdict) => [label, fmt(m.p.p50, 1), fmt(m.p.p90, 1), fmt(m.p.p99, 1), fmt(m.p.max, 1), verdict];
  table(
    ['rate', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'target p50 ≤ 5, p99 ≤ 25'],
    [
      row(`${RATE}/s`, target, target.p.p50 <= 5 && target.p.p99 <= 25 ? 'met' : `NOT met (p50 ${mark(target.p.p50 <= 5)}, p99 ${mark(target.p.p99 <= 25)})`),
      row(`${low}/s`, below, 'reported'),
    ],
  );
  for (const [label, m] of [[`${RATE}/s`, target], [`${low}/s`, below]]) {
    console.log(
      `at ${label}: accept answered p50 ${fmt(m.answer.p50, 1)} / p99 ${fmt(m.answer.p99, 1)} ms after its scheduled send; webhook p50 ${fmt(m.after.p50, 1)} / p99 ${fmt(m.after.p99, 1)} ms after the answer`,
    );
    console.log(`ledger at ${label}: sent ${m.sent}, accepted ${m.accepted}, delivered ${m.p.n} → ${m.balanced ? 'balances' : 'DOES NOT balance'}`);
  }
}
