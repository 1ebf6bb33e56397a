/**
 * Issue 16: a folder copy's progress carries its totals — files and bytes — while it runs, not
 * only once it has finished, so a client polling GET /instances/events/{eventId} can tell how
 * far along it is. Each copy is held mid-way by a test pause point (src/testing/pause-points.ts:
 * `copy-batch` on localfs, `copy-file` on S3 and SFTP), so the reading is certainly taken while
 * it runs, whatever the machine's speed; then it is let go and must finish with the same totals.
 * (SFTP lists the whole source before copying anything; localfs reads folders ahead of the
 * copies; S3 counts with a second listing beside the copy's own.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FAST_ASYNC, PLATFORM_AUTH, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { filesUnder, makeTree, startJob, waitForEvent, type JobApi } from '../helpers/jobs.js';
import { releasePausePoints } from '../../src/testing/pause-points.js';

let srv: TestServer;
let rx: Receiver;
let s3: S3TestServer | null = null;
let sshd: TestSshd | null = null;
const apis: { localfs?: JobApi; s3?: JobApi; sftp?: JobApi } = {};
let localRoot = '';

before(async () => {
  // The runner on this thread: the test releases the pause point it holds the job at.
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off', FERRY_LEASE: '30000' });
  rx = await startReceiver();
  const local = await srv.instance('localfs', { root: 'totals' });
  localRoot = path.join(srv.config.localfsBase, 'totals');
  apis.localfs = { base: srv.base, platformAuth: PLATFORM_AUTH, hubAuth: local.auth, callbackUrl: rx.url };
  s3 = await startS3();
  if (s3) {
    const bucket = await srv.instance('amazons3', s3.config);
    apis.s3 = { base: srv.base, platformAuth: PLATFORM_AUTH, hubAuth: bucket.auth, callbackUrl: rx.url };
  }
  sshd = await startSshd();
  if (sshd) {
    const server = await srv.instance('sftp', sshd.config);
    apis.sftp = { base: srv.base, platformAuth: PLATFORM_AUTH, hubAuth: server.auth, callbackUrl: rx.url };
  }
});

after(async () => {
  delete process.env.FERRY_TEST_PAUSE;
  await srv?.close();
  await rx?.close();
  await s3?.stop();
  await sshd?.stop();
});

/**
 * Copies `/src` to `/dst` as a job held at `pause`: while it is held, its progress shows the
 * totals; once let go it completes with the same ones.
 */
async function copyHeldMidway(api: JobApi, pause: string, files: number, bytes: number): Promise<void> {
  process.env.FERRY_TEST_PAUSE = pause;
  try {
    const eventId = await startJob(api, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst' } });
    const midway = await waitForEvent(api, eventId, (e) => e.execution.state === 'running' && e.progress.bytesTotal !== null, 20_000);
    assert.equal(midway.progress.bytesTotal, bytes, `the sum of the source sizes while it runs: ${JSON.stringify(midway.progress)}`);
    assert.equal(midway.progress.itemsTotal, files);
    assert.ok(midway.progress.itemsDone < files && midway.progress.bytesDone < bytes, `held mid-way: ${JSON.stringify(midway.progress)}`);
    assert.equal(midway.progress.percentageComplete, Math.floor((midway.progress.bytesDone / bytes) * 100), 'the share of the bytes');
    releasePausePoints();
    delete process.env.FERRY_TEST_PAUSE;
    const final = await waitForEvent(api, eventId, (e) => e.execution.state !== 'running' && e.execution.state !== 'dispatched', 60_000);
    assert.equal(final.execution.state, 'completed');
    assert.deepEqual(final.progress, { percentageComplete: 100, itemsDone: files, itemsTotal: files, bytesDone: bytes, bytesTotal: bytes });
  } finally {
    releasePausePoints();
    delete process.env.FERRY_TEST_PAUSE;
  }
}

test('localfs: a folder copy held mid-way shows its file and byte totals', { timeout: 120_000 }, async () => {
  // Three folders of 70 files (a batch of 64 and one of 6 each); held before its second batch.
  const sizes = makeTree(path.join(localRoot, 'src'), 210, 70);
  const bytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  await copyHeldMidway(apis.localfs!, 'copy-batch:2', sizes.size, bytes);
  assert.deepEqual(filesUnder(path.join(localRoot, 'dst')), filesUnder(path.join(localRoot, 'src')));
});

test('amazons3: a folder copy held mid-way shows its object and byte totals', { timeout: 120_000 }, async (t) => {
  if (!s3) return t.skip('s3rver could not start');
  const client = new S3Client({
    endpoint: s3.directEndpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  // More objects than the copy runs at once (16), in nested prefixes, of different sizes.
  let bytes = 0;
  const keys = Array.from({ length: 60 }, (_, i) => `src/${i % 3 === 0 ? 'a/' : i % 3 === 1 ? 'a/b/' : ''}o${i}.bin`);
  try {
    for (const [i, key] of keys.entries()) {
      const body = randomBytes(1000 + i * 37);
      bytes += body.length;
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
    }
  } finally {
    client.destroy();
  }
  // Two objects copied, then every copy slot is held before its next object.
  await copyHeldMidway(apis.s3!, 'copy-file:3', keys.length, bytes);
});

test('sftp: a folder copy held mid-way shows its file and byte totals', { timeout: 120_000 }, async (t) => {
  if (!sshd) return t.skip('no test sshd');
  const sizes = makeTree(path.join(sshd.home, 'src'), 40, 15);
  const bytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  // Two files copied, then every copy slot is held before its next file.
  await copyHeldMidway(apis.sftp!, 'copy-file:3', sizes.size, bytes);
  assert.deepEqual(filesUnder(path.join(sshd.home, 'dst')), filesUnder(path.join(sshd.home, 'src')));
  assert.ok(fs.readFileSync(path.join(sshd.home, 'dst', 'd1', 'f20.txt')).equals(fs.readFileSync(path.join(sshd.home, 'src', 'd1', 'f20.txt'))));
});
