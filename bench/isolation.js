// isolation: 50 healthy receivers (50 origins), plus — in the second run — one receiver that
// answers after 10 s and one port that refuses connections. Requests are spread round-robin
// over the callback URLs; the figure is the healthy receivers' delivered throughput (webhooks
// per second from the first send to the last healthy arrival) with vs without the bad two.
// FERRY_DELIVERY_TIMEOUT stays at its default (15 s); each run is bounded (~20 s). The two
// kinds of run alternate (baseline, with bad, baseline, with bad), each on a fresh node, so the
// machine's drift over the benchmark falls on both alike.
import { PING, closedLoop, closedPort, combined, fmt, mark, newPool, now, pct, startNode, startReceiver, table, waitFor } from './lib.js';

const HEALTHY = 50;
const COUNT = Number(process.env.BENCH_ISOLATION_COUNT ?? 5000);
const SECONDS = 10;
const CONNECTIONS = 32;
const ROUNDS = 3;

async function run(withBad) {
  const healthy = await Promise.all(Array.from({ length: HEALTHY }, () => startReceiver()));
  const slow = withBad ? await startReceiver({ delayMs: 10_000 }) : null;
  const refused = withBad ? `http://127.0.0.1:${await closedPort()}/hook` : null;
  const urls = healthy.map((r) => r.url);
  if (withBad) urls.push(slow.url, refused);
  const node = await startNode({});
  const pool = newPool(node.origin, CONNECTIONS);
  const headers = urls.map((u) => ({ authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': u }));
  const isHealthy = (i) => i % urls.length < HEALTHY;
  let healthyAccepted = 0;
  const load = await closedLoop(pool, {
    count: COUNT,
    seconds: SECONDS,
    connections: CONNECTIONS,
    opts: (i) => ({ method: 'GET', path: PING, headers: headers[i % urls.length] }),
    onBody: (i, status) => {
      if (status === 200 && isHealthy(i)) healthyAccepted++;
    },
  });
  const delivered = () => healthy.reduce((n, r) => n + r.count, 0);
  await waitFor(() => delivered() >= healthyAccepted, 10_000);
  const last = Math.max(...healthy.map((r) => r.lastAt));
  const got = delivered();
  const seconds = (last - load.started) / 1000;
  await pool.close();
  const closing = now();
  await node.close();
  const closeMs = now() - closing;
  await Promise.all([...healthy, ...(slow ? [slow] : [])].map((r) => r.close()));
  return { seconds, got, healthyAccepted, closeMs };
}

export async function isolation() {
  console.log(
    `\n## isolation: ${HEALTHY} healthy receivers, with vs without one 10 s receiver and one refusing port (≤ ${COUNT} requests or ${SECONDS} s, ${CONNECTIONS} connections; ${ROUNDS} alternating rounds)\n`,
  );
  const runs = { base: [], bad: [] };
  for (let i = 0; i < ROUNDS; i++) {
    runs.base.push(await run(false));
    runs.bad.push(await run(true));
  }
  const total = (list) => {
    const { ok, rps } = combined(list, (r) => r.got);
    return { got: ok, healthyAccepted: list.reduce((n, r) => n + r.healthyAccepted, 0), throughput: rps };
  };
  const base = total(runs.base);
  const bad = total(runs.bad);
  const ratio = bad.throughput / base.throughput;
  table(
    ['run', 'healthy webhooks/s', 'healthy delivered/accepted', 'ratio', 'target ≥ 90 %'],
    [
      ['50 healthy (baseline)', fmt(base.throughput), `${base.got}/${base.healthyAccepted}`, '', ''],
      ['50 healthy + slow + refusing', fmt(bad.throughput), `${bad.got}/${bad.healthyAccepted}`, pct(ratio), mark(ratio >= 0.9)],
    ],
  );
}
