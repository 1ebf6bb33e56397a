/**
 * Fault injection (issue 7): a full disk under the data dir, a SQLite database held locked by
 * another writer, and slow or stalled clients. Each fault must end in a clear, documented answer
 * (503 + Retry-After, 408, a closed connection) with nothing half-written, and the service must
 * work again once the fault is gone. Faults covered elsewhere: receivers that never answer,
 * trickle bytes or send 1 GB (test/async/deliver.test.ts); S3 and SFTP connections dropped
 * mid-stream (test/elements/*.test.ts); SIGKILL during a stream of requests
 * (test/async/crash.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FAST_ASYNC, startReceiver, startTestServer, type TestServer } from '../helpers/server.js';

let faults = 0;

type Counts = { jobs: number; events: number; notificationsPending: number } | null;

/** An async ping on the instance; returns status, body and Retry-After. */
async function asyncPing(srv: TestServer, auth: string, callback: string) {
  const res = await fetch(`${srv.base}/hubs/documents/ping`, {
    headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': callback },
  });
  const body: any = await res.json();
  return { status: res.status, body, retryAfter: res.headers.get('retry-after'), requestId: res.headers.get('elements-request-id') };
}

/** Mounts a small tmpfs, or returns why it cannot. */
function mountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): ${String((e as Error).message).split('\n')[0]}`;
  }
}

/** Writes `file` until the file system is full; returns the bytes written. */
function fillDisk(file: string): number {
  const fd = fs.openSync(file, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          written += fs.writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

test('full disk under the data dir: accept answers 503 + Retry-After, stores nothing, and recovers', async (t) => {
  const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-full-'));
  const why = mountTmpfs(mountPoint, '24m');
  if (why) {
    fs.rmSync(mountPoint, { recursive: true, force: true });
    t.skip(why);
    return;
  }
  const rx = await startReceiver();
  const dataDir = path.join(mountPoint, 'data');
  let srv: TestServer | null = null;
  try {
    srv = await startTestServer({ ...FAST_ASYNC }, dataDir);
    const inst = await srv.instance('localfs', { root: 'full' });
    const accepted: number[] = [];
    const first = await asyncPing(srv, inst.auth, rx.url);
    assert.equal(first.status, 200);
    accepted.push(first.body.eventId);
    await rx.waitFor(1);

    const ballast = path.join(mountPoint, 'ballast');
    fillDisk(ballast);
    faults += 1;
    // SQLite may still have room in pages and WAL it already owns; keep accepting until it needs
    // a new block. Every answer must be 200 (stored) or 503 (nothing stored).
    let refused: Awaited<ReturnType<typeof asyncPing>> | null = null;
    for (let i = 0; i < 2000 && !refused; i++) {
      const before: Counts = await srv.ferry.store.asyncCounts().catch(() => null);
      const res = await asyncPing(srv, inst.auth, rx.url);
      if (res.status === 200) {
        accepted.push(res.body.eventId);
        continue;
      }
      assert.equal(res.status, 503, JSON.stringify(res.body));
      refused = res;
      const after: Counts = await srv.ferry.store.asyncCounts().catch(() => null);
      if (before && after) {
        // Earlier accepted events keep running meanwhile (a job may complete into a
        // notification), so compare what a refused request could have added: an event or a job.
        assert.equal(after.events, before.events, 'a refused request stored no event');
        assert.ok(after.jobs <= before.jobs, `a refused request stored no job (${before.jobs} → ${after.jobs})`);
      }
    }
    assert.ok(refused, 'the full disk was noticed within 2000 requests');
    assert.ok(Number(refused.retryAfter) > 0, 'Retry-After is set');
    assert.match(refused.body.message, /storage is full or busy.*retry/i);
    assert.equal(refused.body.requestId, refused.requestId);
    assert.doesNotMatch(JSON.stringify(refused.body), /SQLITE|ENOSPC|\/tmp\//, 'no internal detail');

    // Space returns: accepting works again and every accepted event is delivered.
    fs.rmSync(ballast);
    let again: Awaited<ReturnType<typeof asyncPing>> | null = null;
    for (let i = 0; i < 50; i++) {
      again = await asyncPing(srv, inst.auth, rx.url);
      if (again.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(again?.status, 200, JSON.stringify(again?.body));
    accepted.push(again!.body.eventId);
    const delivered = await rx.waitFor(accepted.length, 30_000, (h) => accepted.includes(h.body?.eventId));
    assert.deepEqual(new Set(delivered.map((h) => h.body.eventId)), new Set(accepted));
    console.log(`# full disk: ${accepted.length - 1} accepted before the refusal, all delivered after recovery`);
  } finally {
    await srv?.close().catch(() => {});
    await rx.close();
    try {
      execFileSync('umount', ['-l', mountPoint]);
    } catch {
      // already unmounted
    }
    fs.rmSync(mountPoint, { recursive: true, force: true });
  }
});

test('database locked by another writer: accept answers 503 (not 500) and recovers on release', async () => {
  const rx = await startReceiver();
  const srv = await startTestServer({ ...FAST_ASYNC });
  const holder = new Database(path.join(srv.dataDir, 'ferry.db'));
  try {
    const inst = await srv.instance('localfs', { root: 'busy' });
    const before = await srv.ferry.store.asyncCounts();
    holder.pragma('busy_timeout = 0');
    holder.prepare('BEGIN IMMEDIATE').run();
    faults += 1;
    const started = Date.now();
    const res = await asyncPing(srv, inst.auth, rx.url);
    const waited = Date.now() - started;
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.ok(Number(res.retryAfter) > 0);
    assert.match(res.body.message, /busy|retry/i);
    holder.prepare('COMMIT').run();
    assert.deepEqual(await srv.ferry.store.asyncCounts(), before, 'nothing was stored');
    const ok = await asyncPing(srv, inst.auth, rx.url);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const [hook] = await rx.waitFor(1, 15_000, (h) => h.body?.eventId === ok.body.eventId);
    assert.equal(hook.body.eventStatus, 'completed');
    console.log(`# locked database: refused after ${waited} ms (SQLite busy_timeout), recovered on release`);
  } finally {
    if (holder.inTransaction) holder.prepare('ROLLBACK').run();
    holder.close();
    await srv.close();
    await rx.close();
  }
});

/** Opens a raw connection and resolves when the server closes it: elapsed ms and what it sent. */
function holdConnection(port: number, feed: (socket: net.Socket) => void): Promise<{ ms: number; received: string }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const started = Date.now();
    let received = '';
    const guard = setTimeout(() => socket.destroy(), 20_000);
    socket.on('data', (d) => (received += d.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(guard);
      resolve({ ms: Date.now() - started, received });
    });
    socket.on('connect', () => feed(socket));
  });
}

/** Writes `text` one character every `everyMs` while the socket is open. */
function trickle(socket: net.Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return clearInterval(timer);
    socket.write(text[i++]);
  }, everyMs);
  socket.on('close', () => clearInterval(timer));
}

test('slow clients: headers byte by byte, a trickled JSON body and a stalled upload are cut; a slow upload is not', async () => {
  const srv = await startTestServer({ FERRY_HEADERS_TIMEOUT: '1000', FERRY_BODY_TIMEOUT: '1500', FERRY_IDLE_TIMEOUT: '1000' });
  try {
    const port = Number(new URL(srv.base).port);
    const inst = await srv.instance('localfs', { root: 'slow' });
    const root = path.join(srv.config.localfsBase, 'slow');

    // 1. Headers that never end, one byte every 50 ms (each byte resets any idle timer).
    faults += 1;
    const headers = await holdConnection(port, (s) =>
      trickle(s, `GET /elements/api-v2/hubs/documents/ping HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(5000)}`, 50),
    );
    assert.ok(headers.ms < 3500, `headers: closed after ${headers.ms} ms`);
    assert.match(headers.received, /^HTTP\/1\.1 408 /);
    assert.match(headers.received, /"requestId":"[0-9a-f]{24}"/);

    // 2. A JSON body trickled one byte every 100 ms: cut at FERRY_BODY_TIMEOUT, nothing created.
    faults += 1;
    const json = JSON.stringify({ path: '/trickled' }).padEnd(200, ' ');
    const body = await holdConnection(port, (s) => {
      s.write(
        `POST /elements/api-v2/hubs/documents/folders HTTP/1.1\r\nHost: x\r\nAuthorization: ${inst.auth}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`,
      );
      trickle(s, json, 100);
    });
    assert.ok(body.ms < 4000, `JSON body: closed after ${body.ms} ms`);
    assert.ok(!fs.existsSync(path.join(root, 'trickled')));

    // 3. An upload that stalls half-way: cut at FERRY_IDLE_TIMEOUT, no file and no temp file left.
    faults += 1;
    const boundary = 'slowboundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.bin"\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const payload = 'x'.repeat(20_000);
    const uploadHead = (name: string) =>
      `POST /elements/api-v2/hubs/documents/files?path=/${name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${inst.auth}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + payload.length + tail.length}\r\n\r\n`;
    const stalled = await holdConnection(port, (s) => s.write(uploadHead('stalled.bin') + head + payload.slice(0, 5000)));
    assert.ok(stalled.ms < 4000, `stalled upload: closed after ${stalled.ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(fs.existsSync(root) ? fs.readdirSync(root) : [], [], 'no file, no temp file');

    // 4. An upload that keeps progressing (a chunk every 250 ms for ~5 s) outlives every limit.
    const slow = await holdConnection(port, (s) => {
      s.write(uploadHead('slow.bin') + head);
      const chunks = payload.match(/.{1,1000}/g)!;
      let i = 0;
      const timer = setInterval(() => {
        if (s.destroyed) return clearInterval(timer);
        if (i < chunks.length) s.write(chunks[i++]);
        else {
          clearInterval(timer);
          s.write(tail);
        }
      }, 250);
    });
    assert.match(slow.received, /^HTTP\/1\.1 200 /, slow.received.slice(0, 300));
    assert.ok(slow.ms > 4000, `the slow upload took ${slow.ms} ms`);
    assert.equal(fs.statSync(path.join(root, 'slow.bin')).size, payload.length);
  } finally {
    await srv.close();
  }
});

test('clock jumps: a retry scheduled far ahead (clock set back) waits without blocking others, and runs once the time comes', async () => {
  const rx = await startReceiver();
  // Retries 30 s apart, so the retry is still pending when the test moves it.
  const srv = await startTestServer({ ...FAST_ASYNC, FERRY_RETRY_SCHEDULE: '30,60' });
  const db = new Database(path.join(srv.dataDir, 'ferry.db'));
  try {
    const a = await srv.instance('localfs', { root: 'clock-a' }, 'a');
    const b = await srv.instance('localfs', { root: 'clock-b' }, 'b');
    let aDown = true;
    rx.respond = (h) => ({ status: h.body?.instanceId === a.id && aDown ? 500 : 200 });
    const first = await asyncPing(srv, a.auth, rx.url);
    assert.equal(first.status, 200);
    const eventOf = async (id: number) => (await (await srv.api(`/instances/events/${id}`)).json()) as any;
    for (let i = 0; i < 100 && (await eventOf(first.body.eventId)).notification?.status !== 'retry'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // The wall clock was a day ahead when the retry was scheduled, then set back: to Ferry the
    // retry is now a day away. (due_at is absolute wall-clock time.)
    faults += 1;
    const dayAhead = Date.now() + 86_400_000;
    db.prepare('UPDATE notifications SET due_at = ? WHERE event_id = ?').run(dayAhead, first.body.eventId);
    const waiting = await eventOf(first.body.eventId);
    assert.equal(waiting.notification.status, 'retry', 'the retry is kept, not lost');
    assert.equal(Date.parse(waiting.notification.nextAttemptDate), dayAhead);

    // Other notifications are not held up behind it.
    const second = await asyncPing(srv, b.auth, rx.url);
    const [hook] = await rx.waitFor(1, 10_000, (h) => h.body?.eventId === second.body.eventId);
    assert.equal(hook.body.instanceId, b.id);

    // Once its time comes (here: the clock catches up), it is delivered.
    aDown = false;
    db.prepare('UPDATE notifications SET due_at = ? WHERE event_id = ?').run(Date.now(), first.body.eventId);
    await rx.waitFor(1, 10_000, (h) => h.body?.eventId === first.body.eventId);
  } finally {
    db.close();
    await srv.close();
    await rx.close();
  }
});

test('fault count', () => {
  console.log(`# faults injected here: ${faults} (plus in deliver.test.ts: never-answering, trickling and 1 GB receivers)`);
});
