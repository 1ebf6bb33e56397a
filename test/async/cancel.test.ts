/**
 * Cancellation of async events on localfs (issue 16), on a node with its runner thread (the
 * default): the API's thread answers the cancel, the runner thread stops the job.
 *
 * Jobs are held mid-way by a test pause point (`FERRY_TEST_PAUSE=copy-batch:3`: a folder copy
 * stops before its third batch of files until it is cancelled), never by timing. One instance,
 * FERRY_INSTANCE_CONCURRENCY=1: a second job waits behind the first, so it can be cancelled
 * before it starts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import fs from 'node:fs';
import { hashSecret } from '../../src/identity/secrets.js';
import { FAST_ASYNC, PLATFORM_AUTH, multipartFile, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { cancel, filesUnder, makeTree, startJob, tempFiles, waitForEvent, type JobApi } from '../helpers/jobs.js';

const FILES = 2000;

let srv: TestServer;
let rx: Receiver;
let api: JobApi;
let instanceId: number;
let root: string;

before(async () => {
  process.env.FERRY_TEST_PAUSE = 'copy-batch:3';
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_INSTANCE_CONCURRENCY: '1', FERRY_LEASE: '30000', FERRY_RUNNER_THREAD: 'on' });
  delete process.env.FERRY_TEST_PAUSE; // the runner thread took its copy of the environment
  rx = await startReceiver();
  const inst = await srv.instance('localfs', { root: 'cancel' });
  instanceId = inst.id;
  root = path.join(srv.config.localfsBase, 'cancel');
  api = { base: srv.base, platformAuth: PLATFORM_AUTH, hubAuth: inst.auth, callbackUrl: rx.url };
  makeTree(path.join(root, 'src'), FILES, 500);
  makeTree(path.join(root, 'small'), 3);
});

after(async () => {
  await srv?.close();
  await rx?.close();
});

const hookOf = async (eventId: number) => (await rx.waitFor(1, 30_000, (h) => h.body?.eventId === eventId))[0];

let running: number;
let waiting: number;

test('a job waiting behind the instance limit, cancelled: it never runs, its webhook says cancelled', { timeout: 60_000 }, async () => {
  running = await startJob(api, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst-a' } });
  // Held before its third batch: the first two (64 files each) are copied, and show in its progress.
  await waitForEvent(api, running, (e) => e.execution.state === 'running' && e.progress.itemsDone > 0);
  waiting = await startJob(api, '/folders/copy?path=/small', { method: 'POST', json: { path: '/dst-b' } });
  const before = await waitForEvent(api, waiting, () => true);
  assert.equal(before.execution.state, 'dispatched');
  assert.deepEqual(before.progress, { percentageComplete: 0, itemsDone: 0, itemsTotal: null, bytesDone: 0, bytesTotal: null });

  const answer = await cancel(api, waiting);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.id, waiting);
  assert.equal(answer.body.execution.state, 'cancelled');
  assert.equal(answer.body.status, 'CONSUMED');

  const hook = await hookOf(waiting);
  assert.equal(hook.body.eventStatus, 'cancelled');
  assert.deepEqual(hook.body.response, { events: [] });
  assert.ok(hook.headers['elements-webhook-id'], 'sent like every webhook');
  assert.equal(fs.existsSync(path.join(root, 'dst-b')), false, 'the destination does not exist');

  const again = await cancel(api, waiting);
  assert.equal(again.status, 200);
  assert.equal(again.body.execution.state, 'cancelled');
});

test('a waiting upload, cancelled: its body leaves the spool with the cancel, and the file is never written', async () => {
  const spooled = () => (fs.existsSync(srv.config.spoolDir) ? fs.readdirSync(srv.config.spoolDir) : []);
  const before = spooled();
  // The instance's one slot is still held by the paused copy: the upload waits.
  const upload = await startJob(api, '/files?path=/never/uploaded.bin', { method: 'POST', body: multipartFile(crypto.randomBytes(200_000), 'uploaded.bin') });
  assert.equal(spooled().length, before.length + 1, 'the upload body waits in the spool');
  const answer = await cancel(api, upload);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.execution.state, 'cancelled');
  assert.deepEqual(spooled(), before, 'the cancelled upload body is still in the spool');
  assert.equal((await hookOf(upload)).body.eventStatus, 'cancelled');
  assert.equal(fs.existsSync(path.join(root, 'never')), false, 'nothing was written');
});

test('a folder copy cancelled mid-way: it stops between files, keeps and lists what it copied, leaves no partial file', { timeout: 60_000 }, async () => {
  const answer = await cancel(api, running, instanceId);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.ok(['cancelling', 'cancelled'].includes(answer.body.execution.state), answer.body.execution.state);

  const hook = await hookOf(running);
  assert.equal(hook.body.eventStatus, 'cancelled');
  assert.equal(hook.body.statusCode, 409);
  const copied = filesUnder(path.join(root, 'dst-a'));
  assert.deepEqual(tempFiles(copied), [], 'no partial file');
  assert.ok(copied.length > 0 && copied.length < FILES, `copied ${copied.length} of ${FILES}`);
  for (const rel of copied) {
    assert.ok(fs.readFileSync(path.join(root, 'dst-a', rel)).equals(fs.readFileSync(path.join(root, 'src', rel))), `${rel} is whole`);
  }
  const listed = hook.body.response.events.filter((e: any) => e.metadata.type === 'file').map((e: any) => e.path.slice('/dst-a/'.length)).sort();
  assert.deepEqual(listed, copied, 'the webhook lists exactly the files copied');
  assert.equal(hook.body.progress.itemsDone, copied.length);

  const final = await waitForEvent(api, running, (e) => e.execution.state === 'cancelled');
  assert.deepEqual(final.progress, hook.body.progress);
  const again = await cancel(api, running);
  assert.equal(again.status, 200);
  assert.equal(again.body.execution.state, 'cancelled');
  assert.deepEqual(again.body.notifiedData, final.notifiedData, 'unchanged');
});

test('the cancelled waiting job did not run once the slot was free', async () => {
  // The instance's slot is free now; a fresh job runs, the cancelled one still has not.
  const probe = await startJob(api, '/folders', { method: 'POST', json: { path: '/probe' } });
  assert.equal((await hookOf(probe)).body.eventStatus, 'completed');
  assert.equal(fs.existsSync(path.join(root, 'dst-b')), false);
});

test('cancel of a finished event: 409 naming its state', async () => {
  const done = await startJob(api, '/folders', { method: 'POST', json: { path: '/finished' } });
  assert.equal((await hookOf(done)).body.eventStatus, 'completed');
  const answer = await cancel(api, done);
  assert.equal(answer.status, 409);
  assert.match(answer.body.message, /completed/);
  const event = await waitForEvent(api, done, () => true);
  assert.equal(event.execution.state, 'completed');
});

test('cancel of an unknown event, or another organization’s, or through another instance: 404', async () => {
  assert.equal((await cancel(api, 999_999)).status, 404);
  const other = await srv.instance('localfs', { root: 'cancel-other' });
  assert.equal((await cancel(api, running, other.id)).status, 404);

  const orgSecret = `org2-${crypto.randomBytes(24).toString('hex')}`;
  const userSecret = `user2-${crypto.randomBytes(24).toString('hex')}`;
  const org = await srv.ferry.store.createOrganization({ name: `second-${crypto.randomUUID()}`, secretHash: hashSecret(orgSecret) });
  await srv.ferry.store.createUser({ organizationId: org.id, emailAddress: 'b@example.com', firstName: 'B', lastName: 'B', secretHash: hashSecret(userSecret) });
  const answer = await cancel(api, running, undefined, `User ${userSecret}, Organization ${orgSecret}`);
  assert.equal(answer.status, 404);
  // Hub credentials are not enough: cancel is a platform route.
  assert.equal((await cancel(api, running, undefined, api.hubAuth)).status, 401);
});

test('the OpenAPI document describes the cancel routes and the progress object', async () => {
  const res = await fetch(`${srv.base}/docs/json`);
  assert.equal(res.status, 200);
  const doc: any = await res.json();
  for (const route of ['/elements/api-v2/instances/events/{eventId}/cancel', '/elements/api-v2/instances/{id}/events/{eventId}/cancel']) {
    assert.ok(doc.paths[route]?.put, `${route} is documented`);
    assert.ok(doc.paths[route].put.responses['409'], 'its 409 too');
  }
  const event = doc.paths['/elements/api-v2/instances/events/{eventId}'].get.responses['200'].content['application/json'].schema;
  assert.deepEqual(Object.keys(event.properties.progress.properties).sort(), ['bytesDone', 'bytesTotal', 'itemsDone', 'itemsTotal', 'percentageComplete']);
  assert.ok(event.properties.execution.properties.state.enum.includes('cancelling'));
  assert.ok(event.properties.execution.properties.state.enum.includes('cancelled'));
});

