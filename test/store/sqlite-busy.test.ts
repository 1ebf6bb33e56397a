/**
 * Issue 21: a wait for the SQLite write lock held by another process (a backup, the sqlite3
 * shell) never blocks the API's event loop. The server runs in this process, so the process's
 * event-loop delay is the API's: while another connection holds the database's write lock, an
 * async accept waits for it, synchronous requests go on being answered, and the loop is never
 * stalled for the busy timeout's seconds (it was: better-sqlite3's busy handler sleeps on the
 * thread). Once the lock is released the waiting accept is stored and answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { FAST_ASYNC, startReceiver, startTestServer, testBackend } from '../helpers/server.js';

const HOLD_MS = 1500;

test('a write waiting for a lock held by another process does not block the event loop', { skip: testBackend() !== 'sqlite' && 'SQLite only' }, async () => {
  const rx = await startReceiver();
  const srv = await startTestServer({ ...FAST_ASYNC });
  const holder = new Database(path.join(srv.dataDir, 'ferry.db'));
  const delay = monitorEventLoopDelay({ resolution: 10 });
  try {
    const inst = await srv.instance('localfs', { root: 'busy' });
    /** Sync pings one after the other for `ms`: their statuses and latencies. */
    const pings = async (ms: number) => {
      const started = Date.now();
      const latencies: number[] = [];
      const statuses: number[] = [];
      while (Date.now() - started < ms) {
        const t = performance.now();
        const res = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: inst.auth } });
        await res.arrayBuffer();
        latencies.push(performance.now() - t);
        statuses.push(res.status);
        await new Promise((r) => setTimeout(r, 10));
      }
      latencies.sort((a, b) => a - b);
      return { statuses, latencies, p99: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] };
    };
    // Baseline of the same run, without the lock (the machine may be loaded).
    delay.enable();
    const baseline = await pings(HOLD_MS);
    delay.disable();
    const baselineMaxMs = delay.max / 1e6;
    delay.reset();

    holder.pragma('busy_timeout = 0');
    holder.prepare('BEGIN IMMEDIATE').run();
    const locked = Date.now();
    delay.enable();

    // An async accept needs the write lock: it waits for it.
    const accept = fetch(`${srv.base}/hubs/documents/ping`, {
      headers: { authorization: inst.auth, 'elements-async-request': 'true', 'elements-async-callback-url': rx.url },
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as any, at: Date.now() }));

    // Meanwhile synchronous requests are answered, one after the other, the whole time.
    const locked_ = await pings(HOLD_MS - (Date.now() - locked));
    const answeredWhileLocked = locked_.statuses;
    delay.disable();
    const released = Date.now();
    holder.prepare('COMMIT').run();

    const maxDelayMs = delay.max / 1e6;
    console.log(
      `# lock held ${HOLD_MS} ms: ${locked_.latencies.length} sync pings, p99 ${locked_.p99.toFixed(1)} ms, event-loop delay max ${maxDelayMs.toFixed(1)} ms` +
        ` | baseline without the lock: ${baseline.latencies.length} pings, p99 ${baseline.p99.toFixed(1)} ms, event-loop delay max ${baselineMaxMs.toFixed(1)} ms`,
    );
    assert.deepEqual([...new Set(baseline.statuses)], [200]);
    // Before the fix the loop stood still for the lock's whole duration (up to the 5 s busy
    // timeout); a bound far above scheduling noise and far below that.
    assert.ok(maxDelayMs < HOLD_MS / 2, `the event loop was blocked for ${maxDelayMs.toFixed(0)} ms`);

    const accepted = await accept;
    assert.ok(accepted.at >= released, 'the accept waited for the lock');
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    const [hook] = await rx.waitFor(1, 15_000, (h) => h.body?.eventId === accepted.body.eventId);
    assert.equal(hook.body.eventStatus, 'completed');

    assert.ok(answeredWhileLocked.length >= 5, `only ${answeredWhileLocked.length} requests answered while locked`);
    assert.deepEqual([...new Set(answeredWhileLocked)], [200]);
  } finally {
    delay.disable();
    if (holder.inTransaction) holder.prepare('ROLLBACK').run();
    holder.close();
    await srv.close();
    await rx.close();
  }
});
