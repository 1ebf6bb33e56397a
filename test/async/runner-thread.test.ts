/**
 * FERRY_RUNNER_THREAD (issue 6): a SQLite node's runner and sender run on a worker thread, fed
 * by the jobs its main thread accepts. Both settings give the same results a user sees — webhook
 * bodies, stored bytes, downloadable results — a node closed with jobs in flight loses none of
 * them, and the thread runs at FERRY_RUNNER_NICE.
 */
import { after, before, describe, test } from 'node:test';
import { createHook } from 'node:async_hooks';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { FAST_ASYNC, multipartFile, startReceiver, startTestServer, testBackend, type Receiver, type TestServer } from '../helpers/server.js';

async function accepted(res: Response): Promise<number> {
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.eventId;
}

for (const mode of ['on', 'off']) {
  describe(`FERRY_RUNNER_THREAD=${mode}`, () => {
    let srv: TestServer;
    let rx: Receiver;
    let auth: string;
    before(async () => {
      rx = await startReceiver();
      srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: mode });
      auth = (await srv.instance('localfs', { root: 'rt' })).auth;
    });
    after(async () => {
      await srv?.close();
      await rx?.close();
    });

    const asyncHub = (p: string, init: RequestInit = {}) =>
      srv.api(`/hubs/documents${p}`, {
        ...init,
        headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': rx.url },
      });

    test('an async upload stores the exact bytes, and an async download returns them as a result', async () => {
      const content = crypto.randomBytes(150_000);
      const up = await accepted(await asyncHub('/files?path=/t/bytes.bin', { method: 'POST', body: multipartFile(content, 'bytes.bin') }));
      const [upHook] = await rx.waitFor(1, 10_000, (h) => h.body?.eventId === up);
      assert.equal(upHook.body.eventStatus, 'completed', JSON.stringify(upHook.body));
      assert.deepEqual(
        upHook.body.response.events.map((e: any) => e.path),
        ['/t/bytes.bin'],
      );
      assert.deepEqual(fs.readFileSync(path.join(srv.config.localfsBase, 'rt', 't', 'bytes.bin')), content);

      const down = await accepted(await asyncHub('/files?path=/t/bytes.bin'));
      const [downHook] = await rx.waitFor(1, 10_000, (h) => h.body?.eventId === down);
      assert.equal(downHook.body.response.size, content.length);
      const res = await srv.api(downHook.body.response.resultUrl.slice(srv.base.length));
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);
    });

    test('an async upload sent chunked (no Content-Length) stores the exact bytes', async () => {
      const content = crypto.randomBytes(40_000);
      const boundary = 'ferry-chunked-boundary';
      const parts = [
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n\r\n`),
        content,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ];
      const body = new ReadableStream({
        start(controller) {
          for (const p of parts) controller.enqueue(new Uint8Array(p));
          controller.close();
        },
      });
      const res = await fetch(`${srv.base}/hubs/documents/files?path=/t/chunked.bin`, {
        method: 'POST',
        body,
        duplex: 'half',
        headers: {
          authorization: auth,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'elements-async-request': 'true',
          'elements-async-callback-url': rx.url,
        },
      } as RequestInit);
      const id = await accepted(res);
      const [hook] = await rx.waitFor(1, 10_000, (h) => h.body?.eventId === id);
      assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
      assert.deepEqual(fs.readFileSync(path.join(srv.config.localfsBase, 'rt', 't', 'chunked.bin')), content);
    });

    test('a failing replay reports its status and error body', async () => {
      const id = await accepted(await asyncHub('/files?path=/t/missing.bin'));
      const [hook] = await rx.waitFor(1, 10_000, (h) => h.body?.eventId === id);
      assert.equal(hook.body.eventStatus, 'failed');
      assert.equal(hook.body.statusCode, 404);
      assert.match(JSON.stringify(hook.body.response), /missing\.bin/);
    });
  });
}

test('a node closed right after accepting loses no job: a restart on the same data delivers every one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-rt-'));
  const rx = await startReceiver();
  try {
    let srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'on' }, dir);
    const { auth } = await srv.instance('localfs', { root: 'restart' });
    const ids: number[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await srv.api('/hubs/documents/ping', {
        headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': rx.url },
      });
      ids.push(await accepted(res));
    }
    await srv.close();
    srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'on' }, dir);
    try {
      const wanted = new Set(ids);
      const hooks = await rx.waitFor(ids.length, 15_000, (h) => wanted.has(h.body?.eventId));
      assert.deepEqual(new Set(hooks.map((h) => h.body.eventId)), wanted);
      for (const h of hooks) assert.equal(h.body.eventStatus, 'completed');
    } finally {
      await srv.close();
    }
  } finally {
    await rx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Nice values of this process's threads (Linux), by thread id. */
function threadNices(): Map<string, number> {
  const nices = new Map<string, number>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name: state is field 3, nice field 19.
    nices.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return nices;
}

const linuxSqlite = process.platform === 'linux' && testBackend() === 'sqlite';

test('the runner thread runs at FERRY_RUNNER_NICE and the API thread keeps its priority', { skip: !linuxSqlite && 'needs Linux and the SQLite store' }, async () => {
  const before = threadNices();
  const srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'on', FERRY_RUNNER_NICE: '7' });
  try {
    const added = [...threadNices()].filter(([tid]) => !before.has(tid));
    assert.ok(added.some(([, nice]) => nice === 7), `no new thread at nice 7: ${JSON.stringify(added)}`);
    assert.equal(threadNices().get(String(process.pid)), 0, 'the main thread was niced');
  } finally {
    await srv.close();
  }
});

test('replayed requests leave no timers behind once answered', async () => {
  const rx = await startReceiver();
  // Replays on this thread, so its timers are the ones counted.
  const srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off' });
  try {
    const { auth } = await srv.instance('localfs', { root: 'timers' });
    // Timers created and not yet cleared or fired (unref'd ones included, unlike
    // process.getActiveResourcesInfo()).
    const pending = new Set<number>();
    const hook = createHook({
      init: (id, type) => type === 'Timeout' && pending.add(id),
      destroy: (id) => pending.delete(id),
    }).enable();
    const timers = () => pending.size;
    const ids: number[] = [];
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await srv.api('/hubs/documents/ping', {
          headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': rx.url },
        });
        ids.push(await accepted(res));
      }
      const wanted = new Set(ids);
      await rx.waitFor(ids.length, 15_000, (h) => wanted.has(h.body?.eventId));
    };
    await run(5);
    const settled = timers();
    await run(100);
    // Each replay used to arm a FERRY_BODY_TIMEOUT timer that only a body's end cleared, holding
    // the replayed exchange in memory for 30 s.
    assert.ok(timers() < settled + 20, `timers grew from ${settled} to ${timers()} over 100 jobs`);
    hook.disable();
  } finally {
    await srv.close();
    await rx.close();
  }
});

test('FERRY_RUNNER_YIELD: a burst from 32 clients pauses the runner thread, and a node closed while it is paused loses none of the burst', async () => {
  const rx = await startReceiver();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-yield-'));
  let srv = await startTestServer({ ...FAST_ASYNC }, dir);
  try {
    const { auth } = await srv.instance('localfs', { root: 'yield' });
    const thread = srv.ferry.runnerThread!;
    assert.ok(thread, 'a SQLite node runs a runner thread');
    const pool = new Pool(new URL(srv.base).origin, { connections: 32 });
    const path0 = new URL(srv.base).pathname;
    const ids: number[] = [];
    const deadline = Date.now() + 30_000;
    // Async pings from 32 clients at once until the runner thread pauses (at most 30 s).
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (thread.pauses === 0 && Date.now() < deadline) {
          const res = await pool.request({
            method: 'GET',
            path: `${path0}/hubs/documents/ping`,
            headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': rx.url },
          });
          const body: any = await res.body.json();
          assert.equal(res.statusCode, 200, JSON.stringify(body));
          ids.push(body.eventId);
        }
      }),
    );
    await pool.close();
    assert.ok(thread.pauses > 0, `the runner thread never paused during ${ids.length} accepts`);
    // Closed while paused (the pause lasts up to a second): the stop is not held back, and
    // what the pause left waiting is stored.
    await srv.close();
    srv = await startTestServer({ ...FAST_ASYNC }, dir);
    const wanted = new Set(ids);
    const hooks = await rx.waitFor(ids.length, 60_000, (h) => wanted.has(h.body?.eventId) && h.body.eventStatus === 'completed');
    assert.equal(new Set(hooks.map((h) => h.body.eventId)).size, ids.length, 'every accepted event completed and was delivered');
  } finally {
    await srv.close();
    await rx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
