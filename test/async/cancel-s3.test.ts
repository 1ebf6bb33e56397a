/**
 * Cancellation on S3 (issue 16, s3rver): a large async upload (20 MiB: a multipart upload of
 * 8 MiB parts) held mid-way by a test pause point (`body-chunk:48`: its body stops after 12 MiB
 * were read from the spool) is cancelled. Afterwards there is no object, the multipart upload
 * Ferry started was aborted (the abort request is in s3rver's traffic, for that upload id, and
 * nothing completed it), and ListMultipartUploads is empty where the server implements it
 * (s3rver 3.7 does not: that one check is then skipped, with the reason).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { FAST_ASYNC, PLATFORM_AUTH, multipartFile, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { cancel, startJob, waitForEvent, type JobApi } from '../helpers/jobs.js';

let s3: S3TestServer | null = null;
let srv: TestServer;
let rx: Receiver;
let api: JobApi;

before(async () => {
  s3 = await startS3();
  if (!s3) return;
  process.env.FERRY_TEST_PAUSE = 'body-chunk:48';
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_LEASE: '30000', FERRY_RUNNER_THREAD: 'off' });
  rx = await startReceiver();
  const inst = await srv.instance('amazons3', s3.config);
  api = { base: srv.base, platformAuth: PLATFORM_AUTH, hubAuth: inst.auth, callbackUrl: rx.url };
});

after(async () => {
  delete process.env.FERRY_TEST_PAUSE;
  await srv?.close();
  await rx?.close();
  await s3?.stop();
});

test('s3: a large upload cancelled mid-way leaves no object and no multipart upload', { timeout: 120_000 }, async (t) => {
  if (!s3) return t.skip('s3rver could not start');
  const big = crypto.randomBytes(20 * 1024 * 1024);
  s3.resetTraffic();
  const eventId = await startJob(api, '/files?path=/big/cancelled.bin', { method: 'POST', body: multipartFile(big, 'cancelled.bin') });
  // Held after 12 MiB: its progress shows bytes read of the whole body.
  const midway = await waitForEvent(api, eventId, (e) => e.execution.state === 'running' && e.progress.bytesDone >= 12 * 1024 * 1024);
  assert.ok(midway.progress.bytesTotal > big.length && midway.progress.percentageComplete < 100, JSON.stringify(midway.progress));
  const started = () => s3!.traffic().requests.filter((r) => r.method === 'POST' && /(^|&)uploads(=|&|$)/.test(r.query));
  // The first part is on its way: the multipart upload exists.
  const until = Date.now() + 30_000;
  while (started().length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.equal(started().length, 1, 'a multipart upload was started');

  const answer = await cancel(api, eventId);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const [hook] = await rx.waitFor(1, 30_000, (h) => h.body?.eventId === eventId);
  assert.equal(hook.body.eventStatus, 'cancelled');
  assert.deepEqual(hook.body.response, { events: [] });

  const hub = await fetch(`${srv.base}/hubs/documents/files/metadata?path=/big/cancelled.bin`, { headers: { authorization: api.hubAuth } });
  assert.equal(hub.status, 404, 'no object');
  const requests = s3.traffic().requests;
  const aborts = requests.filter((r) => r.method === 'DELETE' && /uploadId=/.test(r.query));
  assert.ok(aborts.length >= 1, 'Ferry asked S3 to abort the multipart upload');
  const completes = requests.filter((r) => r.method === 'POST' && /uploadId=/.test(r.query));
  assert.deepEqual(completes, [], 'nothing completed it');
  assert.equal((await waitForEvent(api, eventId, () => true)).execution.state, 'cancelled');

  const client = new S3Client({
    endpoint: s3.directEndpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  try {
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }));
    assert.deepEqual(listed.Uploads ?? [], [], 'no multipart upload left');
  } catch (e) {
    if ((e as { name?: string }).name !== 'NotImplemented') throw e;
    t.diagnostic('s3rver does not implement ListMultipartUploads: checked through the abort request instead');
  } finally {
    client.destroy();
  }
});
