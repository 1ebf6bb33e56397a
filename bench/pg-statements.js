// pg-statements: what one event costs PostgreSQL, counted on the wire (bench/pg-wire.js) — the
// statements and round trips of all phases together (accept, claim, complete, deliver) per
// delivered event, the NOTIFY deliveries the nodes receive, and the statements that make up the
// count — for 1 node and for 3 nodes (`ferry serve --role all`) on one PostgreSQL schema, same
// load: COUNT async pings over INSTANCES localfs instances, closed loop, CONNECTIONS clients
// spread over the nodes, callbacks to one local receiver. Idle statements (polls, heartbeats)
// are measured for IDLE_SECONDS before the load and reported apart, not subtracted.
// Each statement's mean round-trip wait (its 'Q' or 'S' to the server's ReadyForQuery) tells the
// server's share of a statement's latency from the client's.
// PostgreSQL's CPU: the server backends serving the proxy's connections (found by client port
// in pg_stat_activity, CPU from /proc/<pid>/stat), over the load, per statement.
// Knobs: BENCH_PGS_COUNT (1000), BENCH_PGS_NODES (1,3). Needs a build.
import pg from 'pg';
import { cpuMs, fmt, newPool, now, sleep, startReceiver, table, waitFor, PING, PG_URL } from './lib.js';
import { startWireCounter } from './pg-wire.js';
import { createBenchInstances } from './cluster.js';
import { clusterSkipReason, startCluster } from '../dist/test/helpers/cluster.js';

const COUNT = Number(process.env.BENCH_PGS_COUNT ?? 1000);
const NODES = (process.env.BENCH_PGS_NODES ?? '1,3').split(',').map(Number);
const CONNECTIONS = 24;
const INSTANCES = 12;
const IDLE_SECONDS = 3;

/** CPU ms so far of the PostgreSQL backends whose client is one of the proxy's upstream ports. */
async function backendCpu(admin, ports) {
  if (!ports.length) return { ms: 0, pids: 0 };
  const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])', [ports]);
  return { ms: rows.reduce((s, r) => s + cpuMs(`/proc/${r.pid}/stat`), 0), pids: rows.length };
}

async function run(nodes) {
  const receiver = await startReceiver();
  const wire = await startWireCounter(new URL(PG_URL).port ? { host: new URL(PG_URL).hostname, port: Number(new URL(PG_URL).port) } : undefined);
  const target = new URL(PG_URL);
  target.host = `127.0.0.1:${wire.port}`;
  const cluster = await startCluster(Array(nodes).fill('all'), { FERRY_DATABASE_URL: target.toString() });
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    const origins = cluster.nodes.map((n) => new URL(n.base).origin);
    const auths = await createBenchInstances(origins[0], INSTANCES);
    await sleep(1000);
    wire.reset();
    await sleep(IDLE_SECONDS * 1000);
    const idle = wire.counts();
    const pools = origins.map((o) => newPool(o, Math.ceil(CONNECTIONS / nodes)));
    const opts = auths.map((authorization) => ({
      method: 'GET',
      path: PING,
      headers: { authorization, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
    }));
    // Warm: one request per instance through each node (auth memo, pools), not counted.
    for (const pool of pools) for (const o of opts) await (await pool.request(o)).body.dump();
    await waitFor(() => receiver.arrivals.size >= pools.length * opts.length, 30_000, 20);
    const warmed = receiver.arrivals.size;
    wire.reset();
    const cpuBefore = await backendCpu(admin, wire.upstreamPorts());
    // What the backends wait on during the load (sampled every 50 ms): lock waits on shared rows
    // or advisory locks would show as Lock/*, WAL flushes as IO/WALSync or LWLock/WALWrite.
    const waits = new Map();
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      const probe = new pg.Client({ connectionString: PG_URL });
      await probe.connect();
      while (sampling) {
        const { rows } = await probe.query(
          `SELECT coalesce(wait_event_type, 'CPU') || '/' || coalesce(wait_event, state)
                  || CASE WHEN wait_event_type = 'Lock' THEN ' in ' || regexp_replace(left(query, 40), '\\s+', ' ', 'g') ELSE '' END AS w,
                  count(*)::int AS n
           FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND state <> 'idle' GROUP BY 1`,
          [wire.upstreamPorts()],
        );
        samples++;
        for (const r of rows) waits.set(r.w, (waits.get(r.w) ?? 0) + r.n);
        await sleep(50);
      }
      await probe.end();
    })();
    let sent = 0;
    let ok = 0;
    const started = now();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, c) => {
        const pool = pools[c % nodes];
        while (sent < COUNT) {
          const i = sent++;
          try {
            const res = await pool.request(opts[i % INSTANCES]);
            await res.body.dump();
            if (res.statusCode === 200) ok++;
          } catch {
            // counted as not ok
          }
        }
      }),
    );
    const acceptSecs = (now() - started) / 1000;
    const drained = await waitFor(() => receiver.arrivals.size - warmed >= ok, 120_000, 20);
    const endSecs = (receiver.lastAt - started) / 1000;
    const load = wire.counts();
    sampling = false;
    await sampler;
    const cpuAfter = await backendCpu(admin, wire.upstreamPorts());
    await Promise.all(pools.map((p) => p.close()));
    const delivered = receiver.arrivals.size - warmed;
    return { nodes, ok, delivered, drained, acceptSecs, endSecs, idle, load, pgCpuMs: cpuAfter.ms - cpuBefore.ms, backends: cpuAfter.pids, waits, samples };
  } finally {
    await admin.end().catch(() => {});
    await cluster.close();
    await wire.close();
    await receiver.close();
  }
}

/**
 * PostgreSQL's own rate on this box, same moment: single-row autocommit INSERTs (each a commit
 * with a WAL flush, what Ferry's writes pay) and `SELECT 1`s, from 16 clients for 3 s each.
 */
async function pgCeiling() {
  const schema = `ferry_ceiling_${process.pid}`;
  const clients = await Promise.all(
    Array.from({ length: 16 }, async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      return c;
    }),
  );
  try {
    await clients[0].query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id bigserial PRIMARY KEY, v text)`);
    const rate = async (sql, values) => {
      let n = 0;
      const stopAt = now() + 3000;
      await Promise.all(clients.map(async (c) => {
        while (now() < stopAt) {
          await c.query({ name: `ceiling_${sql.length}`, text: sql, values });
          n++;
        }
      }));
      return n / 3;
    };
    const writes = await rate(`INSERT INTO ${schema}.t (v) VALUES ($1)`, ['x']);
    const reads = await rate('SELECT $1::int', [1]);
    return { writes, reads };
  } finally {
    await clients[0].query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}

export async function pgStatements() {
  console.log(`\n## pg-statements: PostgreSQL statements and round trips per event (${COUNT} async pings on ${INSTANCES} instances, ${CONNECTIONS} connections, nodes ${NODES.join(', ')})\n`);
  const reason = await clusterSkipReason();
  if (reason) {
    console.log(`skipped: ${reason}`);
    return;
  }
  const ceiling = await pgCeiling();
  console.log(`PostgreSQL alone, now (16 clients, 3 s each): ${fmt(ceiling.writes)} single-row write commits/s, ${fmt(ceiling.reads)} SELECTs/s\n`);
  const rows = [];
  const details = [];
  for (const nodes of NODES) {
    const r = await run(nodes);
    const per = (n) => fmt(n / Math.max(1, r.delivered), 2);
    rows.push([
      String(nodes),
      `${r.delivered}/${r.ok}${r.drained ? '' : ' (not drained)'}`,
      fmt(r.ok / r.acceptSecs),
      fmt(r.delivered / r.endSecs),
      per(r.load.statements),
      per(r.load.roundTrips),
      per(r.load.notifies),
      fmt(r.idle.statements / IDLE_SECONDS, 1),
      `${fmt((r.pgCpuMs * 1000) / Math.max(1, r.load.statements), 0)} µs (${r.backends} backends)`,
      fmt(r.load.statements / r.endSecs),
    ]);
    details.push([nodes, r]);
  }
  table(
    ['nodes', 'delivered', 'accept/s', 'end-to-end/s', 'statements/event', 'round trips/event', 'NOTIFYs received/event', 'idle statements/s', 'PG CPU/statement', 'statements/s'],
    rows,
  );
  for (const [nodes, r] of details) {
    const waits = [...r.waits].sort((a, b) => b[1] - a[1]).map(([w, n]) => `${w} ${fmt(n / r.samples, 2)}`);
    console.log(`\nbusy backends by wait, ${nodes} node(s) (mean per sample, ${r.samples} samples): ${waits.join(', ')}`);
    console.log(`\nstatements per event, ${nodes} node(s) (≥ 0.01 per event):\n`);
    const top = [...r.load.texts].sort((a, b) => b[1] - a[1]).filter(([, n]) => n / r.delivered >= 0.01);
    // Mean wait of the round trips that ended with the statement: the server's time (with the
    // WAL flush of a commit), not the client's queueing before it sent.
    const wait = (text) => {
      const w = r.load.waits.get(text);
      return w ? fmt(w.ms / w.n, 2) : '–';
    };
    table(
      ['per event', 'mean round-trip wait, ms', 'statement'],
      top.map(([text, n]) => [fmt(n / r.delivered, 2), wait(text), '`' + text.replace(/\|/g, '\\|') + '`']),
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  pgStatements().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
