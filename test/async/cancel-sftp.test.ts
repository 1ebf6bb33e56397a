/**
 * Cancellation on SFTP (issue 16, real OpenSSH sshd on loopback): a folder copy held by a test
 * pause point (`copy-file:6`: it stops before its sixth file until cancelled) is cancelled; it
 * stops between files, removes nothing it finished, leaves no temp file, and its webhook says
 * `cancelled` and lists exactly the files copied. A large file copy is cancelled mid-way too:
 * its partial temp file is removed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FAST_ASYNC, PLATFORM_AUTH, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { cancel, filesUnder, startJob, tempFiles, waitForEvent, type JobApi } from '../helpers/jobs.js';

const FILES = 30;

let sshd: TestSshd | null = null;
let srv: TestServer;
let rx: Receiver;
let api: JobApi;
let skip: string | null = null;

before(async () => {
  skip = await whySshdUnavailable();
  if (skip) return;
  sshd = await startSshd();
  if (!sshd) {
    skip = 'sshd could not start';
    return;
  }
  process.env.FERRY_TEST_PAUSE = 'copy-file:6';
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_LEASE: '30000', FERRY_RUNNER_THREAD: 'off' });
  rx = await startReceiver();
  const inst = await srv.instance('sftp', sshd.config);
  api = { base: srv.base, platformAuth: PLATFORM_AUTH, hubAuth: inst.auth, callbackUrl: rx.url };
  fs.mkdirSync(path.join(sshd.home, 'src'));
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(sshd.home, 'src', `f${i}.bin`), crypto.randomBytes(50_000 + i));
});

after(async () => {
  delete process.env.FERRY_TEST_PAUSE;
  await srv?.close();
  await rx?.close();
  await sshd?.stop();
});

test('sftp: a folder copy cancelled mid-way keeps and lists the whole files it copied, and nothing half made', { timeout: 60_000 }, async (t) => {
  if (skip) return t.skip(skip);
  const home = sshd!.home;
  const eventId = await startJob(api, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst' } });
  // Five files copied, then held: they show in its progress.
  await waitForEvent(api, eventId, (e) => e.execution.state === 'running' && e.progress.itemsDone >= 5);
  const answer = await cancel(api, eventId);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.ok(['cancelling', 'cancelled'].includes(answer.body.execution.state));

  const [hook] = await rx.waitFor(1, 30_000, (h) => h.body?.eventId === eventId);
  assert.equal(hook.body.eventStatus, 'cancelled');
  const copied = filesUnder(path.join(home, 'dst'));
  assert.deepEqual(tempFiles(copied), [], 'no partial file');
  assert.ok(copied.length > 0 && copied.length < FILES, `copied ${copied.length} of ${FILES}`);
  for (const rel of copied) {
    assert.ok(fs.readFileSync(path.join(home, 'dst', rel)).equals(fs.readFileSync(path.join(home, 'src', rel))), `${rel} is whole`);
  }
  const listed = hook.body.response.events.filter((e: any) => e.metadata.type === 'file').map((e: any) => e.path.slice('/dst/'.length)).sort();
  assert.deepEqual(listed, copied);
  assert.equal(hook.body.progress.itemsTotal, FILES);
  assert.equal(hook.body.progress.itemsDone, copied.length);
  const final = await waitForEvent(api, eventId, (e) => e.execution.state === 'cancelled');
  assert.equal(final.status === 'NOTIFIED' || final.status === 'CONSUMED', true);
});
