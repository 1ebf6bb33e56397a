/**
 * FERRY_RUNNER_THREAD (issue 6): replays and webhook attempts run on a worker thread, while
 * claims, completion and delivery records stay on the node's thread. Both settings give the
 * same results a user sees — webhook bodies, stored bytes, downloadable results — and a node
 * closed with jobs in flight loses none of them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAST_ASYNC, multipartFile, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';

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
