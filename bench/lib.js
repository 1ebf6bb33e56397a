// Shared pieces of the benchmarks: a Ferry node on a temp data dir (SQLite) or a fresh
// PostgreSQL database, a webhook receiver that timestamps arrivals, closed- and open-loop load
// generators, percentiles and the table printer. Everything runs on loopback.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Pool } from 'undici';
import { loadConfig } from '../dist/src/config.js';
import { startFerry } from '../dist/src/server.js';

export const USER = 'bench-user-secret-000000000000000000000000000';
export const ORG = 'bench-org-secret-0000000000000000000000000000';
export const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS = { host: '127.0.0.1', port: 6379 };
export const PING = '/elements/api-v2/hubs/documents/ping';

export const now = () => performance.now();

const TICK_MS = 1000 / 100; // USER_HZ: /proc reports CPU time in 1/100 s on Linux

/** CPU ms so far (user + system) from a /proc stat file: `/proc/<pid>/stat` or a thread's; 0 when gone. */
export function cpuMs(statPath) {
  try {
    const stat = fs.readFileSync(statPath, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Creates an empty database next to PG_URL's (a fresh store per run); null when PG is absent. */
export async function freshPgDatabase(tag) {
  const name = `ferry_bench_${tag}_${process.pid}_${Date.now() % 1e6}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (e) {
    await admin.end().catch(() => {});
    return null;
  }
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await c.end();
    },
  };
}

/**
 * Starts a system under test in a child process (bench/sut.js): `kind` 'ferry' (options of
 * startNode) or a peer pipeline ('bullmq', 'pgboss'). Resolves with what it reported (origin,
 * auth …) and `close()`. `sut`: another build's bench/sut.js (bench/cpu.js's BENCH_CPU_BASE).
 */
export async function startProcess(kind, options = {}, sut = new URL('./sut.js', import.meta.url)) {
  // BENCH_CPU_PROF=<dir>: the system under test writes a CPU profile there when it closes;
  // otherwise BENCH_NODE_FLAGS (say "--trace-gc-nvp") are its Node/V8 flags.
  const execArgv = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = fork(sut, [kind, JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv,
  });
  const info = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${kind} exited with code ${code} before it was ready`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    ...info,
    pid: child.pid,
    async close() {
      child.send('close');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Starts Ferry: in a child process (the default, see startProcess), or with `inProcess` in
 * this one (then `ferry` and `config` are the live objects). `store`: 'sqlite' or 'postgres';
 * `env` adds FERRY_* settings. Returns its origin, a localfs instance's hub Authorization and
 * a cleanup.
 */
export async function startNode({ store = 'sqlite', env = {}, root = 'bench', inProcess = false } = {}) {
  if (!inProcess) {
    const child = await startProcess('ferry', { store, env, root });
    return { ...child, config: { localfsBase: child.localfsBase } };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  let db = null;
  if (store === 'postgres') {
    db = await freshPgDatabase('node');
    if (!db) throw new Error('PostgreSQL is not reachable at ' + PG_URL);
  }
  const config = loadConfig({
    PORT: '0',
    FERRY_DATA_DIR: dir,
    FERRY_USER_SECRET: USER,
    FERRY_ORG_SECRET: ORG,
    FERRY_LOG_LEVEL: 'silent',
    FERRY_RATE_LIMIT: '0',
    FERRY_EGRESS_ALLOW: '127.0.0.1/32',
    ...(db ? { FERRY_DATABASE_URL: db.url } : {}),
    // FERRY_RUNNER_* in the bench's environment (THREAD=off, NICE=0, YIELD=off) compares the
    // single-thread node, the thread at the node's priority, a thread that never pauses;
    // FERRY_POLLER_* likewise (NICE=0: the change poller's thread at the node's priority).
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('FERRY_RUNNER_') || k.startsWith('FERRY_POLLER_'))),
    ...env,
  });
  const ferry = await startFerry(config, { print: () => {} });
  const port = ferry.app.server.address()?.port;
  const origin = `http://127.0.0.1:${port}`;
  let auth = null;
  let instance = null;
  if (port) {
    config.port = port;
    instance = await createInstance(origin, 'localfs', { root }, 'bench');
    auth = instance.auth;
  }
  return {
    ferry,
    config,
    dir,
    origin,
    auth,
    instance,
    async close() {
      await ferry.close();
      if (db) await db.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createInstance(origin, key, configuration, name) {
  const res = await fetch(`${origin}/elements/api-v2/instances`, {
    method: 'POST',
    headers: { authorization: `User ${USER}, Organization ${ORG}`, 'content-type': 'application/json' },
    body: JSON.stringify({ element: { key }, name, configuration }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`instance creation failed: ${res.status} ${JSON.stringify(body)}`);
  return { id: body.id, token: body.token, auth: `User ${USER}, Element ${body.token}` };
}

/**
 * A webhook receiver on loopback. Records `performance.now()` of each arrival keyed by the
 * body's `eventId` (Ferry) or `id` (peers). `delayMs` answers late (a slow receiver).
 */
export async function startReceiver({ delayMs = 0, keyOf = (b) => b.eventId ?? b.id } = {}) {
  const arrivals = new Map();
  let count = 0;
  let lastAt = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = now();
      count++;
      lastAt = at;
      try {
        const key = keyOf(JSON.parse(Buffer.concat(chunks).toString()));
        if (key !== undefined && !arrivals.has(String(key))) arrivals.set(String(key), at);
      } catch {
        // not JSON: counted only
      }
      if (delayMs) setTimeout(() => res.writeHead(200).end(), delayMs).unref();
      else res.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  return {
    url,
    arrivals,
    get count() {
      return count;
    },
    get lastAt() {
      return lastAt;
    },
    close() {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** A loopback port nothing listens on (connections are refused). */
export async function closedPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * Closed loop: `connections` workers send back to back until `count` requests were sent or
 * `seconds` elapsed. `opts(i)` gives undici request options; `onBody(i, status, text, sentAt)`.
 */
export async function closedLoop(pool, { count, seconds, connections, opts, onBody }) {
  let sent = 0;
  let ok = 0;
  let failed = 0;
  const started = now();
  const stopAt = started + seconds * 1000;
  async function worker() {
    while (sent < count && now() < stopAt) {
      const i = sent++;
      const at = now();
      try {
        const res = await pool.request(opts(i));
        const text = onBody ? await res.body.text() : (await res.body.dump(), '');
        if (res.statusCode === 200) ok++;
        else failed++;
        onBody?.(i, res.statusCode, text, at);
      } catch {
        failed++;
      }
    }
  }
  await Promise.all(Array.from({ length: connections }, worker));
  const secs = (now() - started) / 1000;
  return { rps: ok / secs, ok, failed, seconds: secs, started };
}

/**
 * Runs measured in rounds, taken together: what they counted (`ok`, or what `count` picks) and
 * that over their summed `seconds`.
 */
export function combined(runs, count = (r) => r.ok) {
  const ok = runs.reduce((n, r) => n + count(r), 0);
  return { ok, rps: ok / runs.reduce((t, r) => t + r.seconds, 0) };
}

/** Waits until `done()` or the timeout; returns whether it finished. */
export async function waitFor(done, timeoutMs, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
  return true;
}

/** The median: the middle value, or the mean of the middle two for an even count. */
export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

export function percentiles(values) {
  const v = Float64Array.from(values).sort();
  const at = (p) => (v.length ? v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)] : NaN);
  return { n: v.length, p50: at(50), p90: at(90), p99: at(99), max: v.length ? v[v.length - 1] : NaN };
}

export function table(headers, rows) {
  console.log(`| ${headers.join(' | ')} |`);
  console.log(`|${headers.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

export const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
export const pct = (r) => (Number.isFinite(r) ? `${(r * 100).toFixed(0)} %` : '–');
export const mark = (ok) => (ok ? 'met' : 'NOT met');

export function newPool(origin, connections) {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
}

/**
 * Open loop: fires `total` requests at `rate`/s (latency counted from each scheduled send time,
 * not from when it went out); returns per-request {scheduled, answered, eventId, status}.
 */
export async function openLoop(pool, rate, total, opts) {
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
            results[i] = { scheduled, answered: now(), status: res.statusCode, eventId: res.statusCode === 200 ? String(JSON.parse(body).eventId) : null };
          })
          .catch((e) => (results[i] = { scheduled, status: 0, eventId: null, error: e.message })),
      );
    }
    await sleep(1);
  }
  await Promise.all(inflight);
  return results;
}
