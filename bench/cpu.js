// cpu: what a Ferry node costs in CPU at a given load, as an operator measures it — the
// process's own CPU time (/proc/<pid>/stat: every thread, dead ones included) and, on
// PostgreSQL, its server backends' (the pids pg_stat_activity lists for the node's database) —
// at idle, at fixed rates of async pings (open loop: 10, 50, 200, 1,000/s) and saturated (closed
// loop, 32 connections). Per rate: cores, CPU per event (CPU over the window from the first
// send to the last webhook, divided by the webhooks), and latency (scheduled send → webhook
// received) p50/p99. The ratio that matters: CPU per event at 50/s over CPU per event saturated
// (target ≤ 1.5×: a trickle should cost per event what a flood does).
//
// Ferry runs in its own process (bench/sut.js); the load generator and the receiver share this
// one and are not counted. Per thread (from /proc/<pid>/task/*/stat, by thread name: the runner
// thread and the checkpointer name themselves) at 50/s, for the account in BENCHMARKS.md.
//
// Knobs: BENCH_CPU_SECONDS (6: each rate's window), BENCH_CPU_IDLE_SECONDS (10, measured after
// BENCH_CPU_SETTLE_SECONDS, 10, without traffic),
// BENCH_CPU_STORES (sqlite,postgres), BENCH_CPU_RATES (10,50,200,1000,sat),
// BENCH_CPU_BASE (a folder with another build — its bench/ and dist/ — measured in the same run,
// right before this one, for a before/after), BENCH_CPU_CONTROL (off: no sync-ping control).
import fs from 'node:fs';
import pg from 'pg';
import { PING, PG_URL, closedLoop, cpuMs, fmt, newPool, now, openLoop, percentiles, sleep, startProcess, startReceiver, table, waitFor } from './lib.js';

const SECONDS = Number(process.env.BENCH_CPU_SECONDS ?? 6);
const IDLE_SECONDS = Number(process.env.BENCH_CPU_IDLE_SECONDS ?? 10);
const SETTLE_SECONDS = Number(process.env.BENCH_CPU_SETTLE_SECONDS ?? 10);
const STORES = (process.env.BENCH_CPU_STORES ?? 'sqlite,postgres').split(',');
const RATES = (process.env.BENCH_CPU_RATES ?? '10,50,200,1000,sat').split(',').filter(Boolean).map((r) => (r === 'sat' ? r : Number(r)));
const BASE = process.env.BENCH_CPU_BASE;
const CONNECTIONS = 32;
/** The saturated window's most requests, so that its backlog drains in bounded time. */
const SATURATED_MAX = 6000;
/** Warm-up: a closed-loop burst, so the rates measure a warm node (JIT, caches, pools). */
const WARM_COUNT = 3000;
/**
 * Per thread of `pid`, keyed by thread name (threads of one name summed): CPU ms so far, and
 * wake-ups so far (context switches, voluntary and not: each is a turn the thread was scheduled
 * for, which on this VM costs a few hundred microseconds of CPU whatever the turn does).
 */
function threads(pid) {
  const out = {};
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let name = 'other';
    let status = '';
    try {
      name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue;
    }
    if (String(tid) === String(pid)) name = 'main';
    else if (name === 'node') name = 'other';
    const switches = [...status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    const t = (out[name] ??= { ms: 0, wakes: 0 });
    t.ms += cpuMs(`/proc/${pid}/task/${tid}/stat`);
    t.wakes += switches;
  }
  return out;
}

/** What each thread spent between two readings of threads(): {name: {ms, wakes}}. */
function threadDelta(after, before) {
  const out = {};
  for (const [name, t] of Object.entries(after)) out[name] = { ms: t.ms - (before[name]?.ms ?? 0), wakes: t.wakes - (before[name]?.wakes ?? 0) };
  return out;
}

/**
 * The server backends of the node's database: their CPU so far, summed over every backend seen
 * since `track` started (a backend that ended keeps its last reading).
 */
async function backends(database) {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const last = new Map();
  const look = async () => {
    const { rows } = await client.query('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
    for (const { pid } of rows) {
      const ms = cpuMs(`/proc/${pid}/stat`);
      if (ms > 0 || !last.has(pid)) last.set(pid, ms);
    }
  };
  return {
    async cpuMs() {
      await look();
      let sum = 0;
      for (const ms of last.values()) sum += ms;
      return sum;
    },
    /** Transactions committed in the database so far (statistics lag up to a second). */
    async commits() {
      const { rows } = await client.query('SELECT xact_commit FROM pg_stat_database WHERE datname = $1', [database]);
      return Number(rows[0]?.xact_commit ?? 0);
    },
    close: () => client.end(),
  };
}

/** Starts one Ferry node (of the build under `root`, this one by default) with its receiver. */
async function startSystem(store, root) {
  const receiver = await startReceiver();
  const sut = root ? new URL(`file://${root.replace(/\/$/, '')}/bench/sut.js`) : undefined;
  const node = await startProcess('ferry', { store, env: {}, root: 'bench' }, sut);
  let db = null;
  if (store === 'postgres') {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const { rows } = await admin.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [`ferry_bench_node_${node.pid}_%`]);
    await admin.end();
    if (rows[0]) db = await backends(rows[0].datname);
  }
  const pool = newPool(node.origin, CONNECTIONS);
  const opts = { method: 'GET', path: PING, headers: { authorization: node.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url } };
  const reading = async () => ({ at: now(), ferry: cpuMs(`/proc/${node.pid}/stat`), db: db ? await db.cpuMs() : 0, commits: db ? await db.commits() : 0, threads: threads(node.pid) });
  return {
    receiver,
    pool,
    opts,
    reading,
    async close() {
      await pool.close();
      await db?.close();
      await node.close();
      await receiver.close();
    },
  };
}

/** One window at `rate` (events/s, or 'sat' for the closed loop); CPU and latency. */
async function measure(system, rate) {
  const { receiver, pool, opts } = system;
  const sent = []; // [eventId, sentAt]
  if (process.env.BENCH_CPU_VERBOSE) console.error(`[cpu] ${new Date().toISOString()} measuring ${rate}`);
  const before = await system.reading();
  if (rate === 'sat') {
    await closedLoop(pool, {
      count: SATURATED_MAX,
      seconds: SECONDS,
      connections: CONNECTIONS,
      opts: () => opts,
      onBody: (i, status, text, at) => status === 200 && sent.push([String(JSON.parse(text).eventId), at]),
    });
  } else {
    const results = await openLoop(pool, rate, Math.round(rate * SECONDS), opts);
    for (const r of results) if (r.status === 200) sent.push([r.eventId, r.scheduled]);
  }
  await waitFor(() => sent.every(([id]) => receiver.arrivals.has(id)), 90_000, 2);
  const after = await system.reading();
  const lat = [];
  for (const [id, at] of sent) {
    const arrived = receiver.arrivals.get(id);
    if (arrived !== undefined) lat.push(arrived - at);
  }
  const p = percentiles(lat);
  const seconds = (after.at - before.at) / 1000;
  const ferryMs = after.ferry - before.ferry;
  const dbMs = after.db - before.db;
  const perThread = threadDelta(after.threads, before.threads);
  return { rate, events: p.n, seconds, ferryMs, dbMs, commits: after.commits - before.commits, perThread, p };
}

/**
 * The control: a synchronous ping (no store write, no job, no webhook) on the same node at 50/s
 * and saturated. What a trickle costs per request more than a flood for any HTTP request on this
 * host (a cold wake-up per request: caches, scheduler, an event-loop turn each) bounds from below
 * what the async pipeline can reach.
 */
async function control(system) {
  const opts = { ...system.opts, headers: { authorization: system.opts.headers.authorization } };
  const cpu = async (fn) => {
    const before = await system.reading();
    const n = await fn();
    const after = await system.reading();
    return (after.ferry - before.ferry) / n;
  };
  const trickle = await cpu(async () => (await openLoop(system.pool, 50, 50 * SECONDS, opts)).filter((r) => r.status === 200).length);
  const flood = await cpu(async () => (await closedLoop(system.pool, { count: 50_000, seconds: SECONDS, connections: CONNECTIONS, opts: () => opts })).ok);
  return { trickle, flood };
}

/**
 * The floor: a bare node:http server (bench/sut.js `bare-http`: no framework, no store, no
 * work) at 50/s and saturated, with the same client. What a trickle costs it per request over
 * what a flood does is this host's price of waking a Node process per request; Ferry's event at
 * a trickle pays it at least once for the request and once for the webhook's answer.
 */
async function floor() {
  const server = await startProcess('bare-http', {});
  const pool = newPool(server.origin, CONNECTIONS);
  const opts = { method: 'GET', path: '/' };
  try {
    await closedLoop(pool, { count: WARM_COUNT, seconds: 5, connections: CONNECTIONS, opts: () => opts });
    const cost = async (fn) => {
      const before = { ms: cpuMs(`/proc/${server.pid}/stat`), t: threads(server.pid) };
      const n = await fn();
      const wakes = Object.values(threadDelta(threads(server.pid), before.t)).reduce((sum, t) => sum + t.wakes, 0);
      return { ms: (cpuMs(`/proc/${server.pid}/stat`) - before.ms) / n, wakes: wakes / n };
    };
    const trickle = await cost(async () => (await openLoop(pool, 50, 50 * SECONDS, opts)).filter((r) => r.status === 200).length);
    const flood = await cost(async () => (await closedLoop(pool, { count: 100_000, seconds: SECONDS, connections: CONNECTIONS, opts: () => opts })).ok);
    return { trickle, flood };
  } finally {
    await pool.close();
    await server.close();
  }
}

/** Idle: a warm node with nothing to do, for IDLE_SECONDS. */
async function idle(system) {
  const before = await system.reading();
  await sleep(IDLE_SECONDS * 1000);
  const after = await system.reading();
  const perThread = threadDelta(after.threads, before.threads);
  return { rate: 'idle', events: 0, seconds: (after.at - before.at) / 1000, ferryMs: after.ferry - before.ferry, dbMs: after.db - before.db, commits: after.commits - before.commits, perThread, p: percentiles([]) };
}

/** Every rate on one fresh node of one build: a warm-up, idle, then each rate in turn. */
async function runBuild(store, root) {
  const system = await startSystem(store, root);
  try {
    // Warm-up, not measured: JIT, connections, page cache (an operator's node is warm). A
    // trickle of a few hundred events leaves V8 optimizing functions for a minute after (each
    // reaches its tier-up count in turn), which a node that has run for a day is long done with.
    const warm = await closedLoop(system.pool, { count: WARM_COUNT, seconds: 10, connections: CONNECTIONS, opts: () => system.opts });
    await waitFor(() => system.receiver.count >= warm.ok, 60_000);
    // Idle is a node that has had no traffic for a while: after a burst V8 collects its garbage
    // a few seconds later (its memory reducer), once, which is the burst's cost, not idling's.
    await sleep(SETTLE_SECONDS * 1000);
    const rows = [await idle(system)];
    for (const rate of RATES) rows.push(await measure(system, rate));
    rows.control = process.env.BENCH_CPU_CONTROL === 'off' ? null : await control(system);
    return rows;
  } finally {
    await system.close();
  }
}

function print(store, label, rows) {
  const sat = rows.find((r) => r.rate === 'sat');
  const perEvent = (r) => (r.events ? (r.ferryMs + r.dbMs) / r.events : NaN);
  table(
    ['rate', 'events', 'Ferry cores', store === 'postgres' ? 'backends cores' : '(no server)', 'CPU ms/event (all)', 'vs saturated', 'p50 ms', 'p99 ms', store === 'postgres' ? 'commits/s (/event)' : ''],
    rows.map((r) => [
      r.rate === 'sat' ? `saturated (${fmt(r.events / r.seconds)}/s)` : r.rate === 'idle' ? 'idle' : `${r.rate}/s`,
      r.events,
      fmt(r.ferryMs / 1000 / r.seconds, 3),
      store === 'postgres' ? fmt(r.dbMs / 1000 / r.seconds, 3) : '',
      fmt(perEvent(r), 2),
      r.events && sat ? `${fmt(perEvent(r) / perEvent(sat), 2)}×` : '',
      fmt(r.p.p50, 1),
      fmt(r.p.p99, 1),
      // pg_stat_database lags (an idle backend reports after up to 10 s): per event only.
      store === 'postgres' && r.events ? `${fmt(r.commits / r.seconds, 1)} (${fmt(r.commits / r.events, 2)})` : '',
    ]),
  );
  const at50 = rows.find((r) => r.rate === 50);
  if (at50) {
    const names = Object.keys(at50.perThread).sort();
    const per = (row, n, key, digits) => fmt(row.perThread[n][key] / row.events, digits);
    console.log(`\n${label}, per thread at 50/s, CPU ms / wake-ups per event: ${names.map((n) => `${n} ${per(at50, n, 'ms', 2)} / ${per(at50, n, 'wakes', 1)}`).join(', ')}`);
    if (sat) console.log(`${label}, per thread saturated, CPU ms / wake-ups per event: ${Object.keys(sat.perThread).sort().map((n) => `${n} ${per(sat, n, 'ms', 3)} / ${per(sat, n, 'wakes', 2)}`).join(', ')}`);
    const idleRow = rows[0];
    console.log(`${label}, per thread at idle (cores): ${Object.keys(idleRow.perThread).sort().map((n) => `${n} ${fmt(idleRow.perThread[n].ms / 1000 / idleRow.seconds, 4)}`).join(', ')}`);
  }
  if (rows.control) {
    const { trickle, flood } = rows.control;
    console.log(`${label}, control — a sync ping (no job) on the same node: ${fmt(trickle, 2)} ms of CPU per request at 50/s, ${fmt(flood, 3)} saturated: ${fmt(trickle / flood, 1)}×`);
  }
  if (at50 && sat) {
    const ratio = perEvent(at50) / perEvent(sat);
    const idleCores = (rows[0].ferryMs + rows[0].dbMs) / 1000 / rows[0].seconds;
    console.log(
      `${label}: CPU per event at 50/s ÷ saturated = ${fmt(ratio, 2)}× (target ≤ 1.5×: ${ratio <= 1.5 ? 'met' : 'NOT met'}); ` +
        `p99 at 50/s ${fmt(at50.p.p99, 1)} ms (target ≤ 25: ${at50.p.p99 <= 25 ? 'met' : 'NOT met'}); ` +
        `idle ${fmt(idleCores, 4)} cores (target ≤ 0.005: ${idleCores <= 0.005 ? 'met' : 'NOT met'})`,
    );
  }
}

export async function cpu() {
  const builds = BASE ? [['baseline (' + BASE + ')', BASE], ['this build', undefined]] : [['this build', undefined]];
  console.log(
    `\n## cpu: Ferry's CPU (all threads${STORES.includes('postgres') ? '; on PostgreSQL also its backends' : ''}) at idle (${IDLE_SECONDS} s), ${RATES.filter((r) => r !== 'sat').join(', ')} events/s (${SECONDS} s each, open loop) and saturated (${CONNECTIONS} connections, ${SECONDS} s); latency: scheduled send → webhook\n`,
  );
  if (process.env.BENCH_CPU_CONTROL !== 'off') {
    const { trickle, flood } = await floor();
    console.log(
      `floor — a bare node:http server (no framework, no work), same client: ${fmt(trickle.ms, 3)} ms of CPU and ${fmt(trickle.wakes, 1)} wake-ups per request at 50/s, ` +
        `${fmt(flood.ms, 3)} ms and ${fmt(flood.wakes, 2)} saturated: ${fmt(trickle.ms / flood.ms, 1)}×`,
    );
  }
  for (const store of STORES) {
    if (store === 'postgres') {
      const probe = new pg.Client({ connectionString: PG_URL });
      const ok = await probe.connect().then(() => true, () => false);
      await probe.end().catch(() => {});
      if (!ok) {
        console.log(`postgres: skipped (PostgreSQL is not reachable at ${PG_URL})`);
        continue;
      }
    }
    for (const [label, root] of builds) {
      console.log(`\n### ${store}, ${label}\n`);
      print(store, `${store}, ${label}`, await runBuild(store, root));
    }
  }
}
