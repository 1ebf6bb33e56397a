/**
 * Progress of long async jobs (issue 16): a localfs folder copy of 5,000 small files, watched
 * through GET /instances/events/{eventId} while it runs. The job is held mid-way by a test pause
 * point (src/testing/pause-points.ts) until its progress has been read there, so the test never
 * depends on how fast the machine copies. Progress only rises, ends at 100 with every file
 * counted, and the final webhook carries the same progress object. A job with no natural
 * measure (a folder creation) reports 0, then 100.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FAST_ASYNC, PLATFORM_AUTH, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { filesUnder, makeTree, startJob, tempFiles, waitForEvent, type JobApi } from '../helpers/jobs.js';
import { releasePausePoints } from '../../src/testing/pause-points.js';

const FILES = 5000;

let srv: TestServer;
let rx: Receiver;
let api: JobApi;
let root: string;

before(async () => {
  // The runner on this thread: the test releases the pause point it holds the job at.
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off', FERRY_LEASE: '30000' });
  rx = await startReceiver();
  const inst = await srv.instance('localfs', { root: 'progress' });
  root = path.join(srv.config.localfsBase, 'progress');
  api = { base: srv.base, platformAuth: PLATFORM_AUTH, hubAuth: inst.auth, callbackUrl: rx.url };
});

after(async () => {
  delete process.env.FERRY_TEST_PAUSE;
  await srv?.close();
  await rx?.close();
});

test('a folder copy of 5,000 files: progress rises while it runs and ends at 100 with every file counted', { timeout: 120_000 }, async () => {
  makeTree(path.join(root, 'src'), FILES, 1000);
  // Held before its 20th batch of files (64 each): mid-way, whatever the machine's speed.
  process.env.FERRY_TEST_PAUSE = 'copy-batch:20';
  const eventId = await startJob(api, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst' } });
  const seen: any[] = [];
  const midway = await waitForEvent(
    api,
    eventId,
    (e) => e.execution.state === 'running' && e.progress.itemsDone > 0 && e.progress.itemsTotal !== null,
    60_000,
    seen,
  );
  assert.ok(midway.progress.itemsDone < FILES, `held mid-way: ${JSON.stringify(midway.progress)}`);
  assert.equal(midway.progress.itemsTotal, FILES, 'every folder is read before the files are copied');
  assert.ok(midway.progress.percentageComplete > 0 && midway.progress.percentageComplete < 100, JSON.stringify(midway.progress));
  assert.ok(midway.progress.bytesDone > 0);
  releasePausePoints();
  delete process.env.FERRY_TEST_PAUSE;
  const final = await waitForEvent(api, eventId, (e) => e.execution.state !== 'running' && e.execution.state !== 'dispatched', 60_000, seen);
  assert.equal(final.execution.state, 'completed');

  // Monotonic: no reading goes back on the one before.
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1].progress, seen[i].progress];
    assert.ok(b.itemsDone >= a.itemsDone, `itemsDone fell: ${a.itemsDone} → ${b.itemsDone}`);
    assert.ok(b.bytesDone >= a.bytesDone, `bytesDone fell: ${a.bytesDone} → ${b.bytesDone}`);
    if (a.percentageComplete !== null && b.percentageComplete !== null) {
      assert.ok(b.percentageComplete >= a.percentageComplete, `percentage fell: ${a.percentageComplete} → ${b.percentageComplete}`);
    }
  }
  const expectedBytes = filesUnder(path.join(root, 'src')).reduce((sum, f) => sum + fs.statSync(path.join(root, 'src', f)).size, 0);
  assert.deepEqual(final.progress, { percentageComplete: 100, itemsDone: FILES, itemsTotal: FILES, bytesDone: expectedBytes, bytesTotal: expectedBytes });
  const copied = filesUnder(path.join(root, 'dst'));
  assert.equal(copied.length, FILES);
  assert.deepEqual(tempFiles(copied), []);

  const [hook] = await rx.waitFor(1, 30_000, (h) => h.body?.eventId === eventId);
  assert.equal(hook.body.eventStatus, 'completed');
  assert.deepEqual(hook.body.progress, final.progress, 'the webhook carries the same progress object');
});

test('a job with no natural measure reports 0, then 100', async () => {
  const eventId = await startJob(api, '/folders', { method: 'POST', json: { path: '/plain-folder' } });
  const [hook] = await rx.waitFor(1, 30_000, (h) => h.body?.eventId === eventId);
  assert.equal(hook.body.eventStatus, 'completed');
  assert.deepEqual(hook.body.progress, { percentageComplete: 100, itemsDone: 0, itemsTotal: 0, bytesDone: 0, bytesTotal: 0 });
  const final = await waitForEvent(api, eventId, (e) => e.execution.state === 'completed');
  assert.deepEqual(final.progress, hook.body.progress);
});
