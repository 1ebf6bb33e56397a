/**
 * The poller thread (FERRY_POLLER_THREAD=on): it runs at FERRY_POLLER_NICE while the API
 * thread keeps its priority; with it off, the poller runs beside the runner and sender and
 * change events still arrive.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { FAST_ASYNC, startReceiver, startTestServer } from '../helpers/server.js';
import { eventsFrom, settle, watching } from './scenario.js';
import { hubClient } from '../hub/conformance.js';

function threadNices(): Map<string, number> {
  const nices = new Map<string, number>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    nices.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return nices;
}

test('the poller thread runs at FERRY_POLLER_NICE; the API thread keeps its priority', { skip: process.platform !== 'linux' && 'needs Linux' }, async () => {
  const before = threadNices();
  const srv = await startTestServer({ ...FAST_ASYNC, FERRY_POLLER_NICE: '17', FERRY_RUNNER_NICE: '3' });
  try {
    const added = [...threadNices()].filter(([tid]) => !before.has(tid));
    assert.ok(added.some(([, nice]) => nice === 17), `no new thread at nice 17: ${JSON.stringify(added)}`);
    assert.equal(threadNices().get(String(process.pid)), 0, 'the main thread was niced');
  } finally {
    await srv.close();
  }
});

for (const runnerThread of ['on', 'off']) {
  test(`FERRY_POLLER_THREAD=off (runner thread ${runnerThread}): changes are announced from beside the sender`, async () => {
    const rx = await startReceiver();
    const srv = await startTestServer({ ...FAST_ASYNC, FERRY_POLLER_MIN_INTERVAL: '1', FERRY_POLLER_THREAD: 'off', FERRY_RUNNER_THREAD: runnerThread });
    try {
      const inst = await srv.instance('localfs', watching({ root: 'beside' }, rx));
      const seen = await settle(hubClient(srv, inst), rx);
      fs.writeFileSync(`${srv.config.localfsBase}/beside/inbox/direct.txt`, 'written on disk');
      const got = await eventsFrom(rx, seen, 1);
      assert.deepEqual(got.events.map((e) => [e.eventType, e.path]), [['CREATED', '/inbox/direct.txt']]);
    } finally {
      await srv.close();
      await rx.close();
    }
  });
}
