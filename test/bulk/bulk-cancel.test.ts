/**
 * Bulk jobs cancelled before they start (issue 17): one instance, FERRY_INSTANCE_CONCURRENCY=1,
 * and an export held at the test pause point `bulk-batch` keeps its only slot, so later jobs
 * wait and are cancelled before any runner takes them. Their webhook carries the same bulk
 * fields as that of a job cancelled mid-way (id, kind, status CANCELLED, counts, the export's
 * query, statusCode 409), whichever cancel route was used; a polled job (no callback URL)
 * cancelled before it starts sends nothing, like a polled job that ran.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { releasePausePoints } from '../../src/testing/pause-points.js';
import { FAST_ASYNC, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { makeTree } from '../helpers/jobs.js';
import { bulkStatus, cancelBulk, startBatch, startExport, waitBulk, type BulkApi } from './bulk-api.js';

let srv: TestServer;
let rx: Receiver;
let api: BulkApi;
let polled: BulkApi;
let instanceId: number;

before(async () => {
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off', FERRY_INSTANCE_CONCURRENCY: '1', FERRY_LEASE: '30000' });
  rx = await startReceiver();
  const inst = await srv.instance('localfs', { root: 'cancel' });
  instanceId = inst.id;
  api = { base: srv.base, hubAuth: inst.auth, callbackUrl: rx.url };
  polled = { base: srv.base, hubAuth: inst.auth };
  makeTree(path.join(srv.config.localfsBase, 'cancel', 'tree'), 3000, 500);
});

after(async () => {
  delete process.env.FERRY_TEST_PAUSE;
  releasePausePoints();
  await srv?.close();
  await rx?.close();
});

const hookOf = async (id: number) => (await rx.waitFor(1, 30_000, (h) => h.body?.eventId === id))[0];

test('a bulk job cancelled before it started is notified with the bulk fields of one cancelled mid-way', { timeout: 60_000 }, async () => {
  process.env.FERRY_TEST_PAUSE = 'bulk-batch:1';
  const q = "select * from files where path like '/tree/%'";
  const holding = await startExport(api, q);
  await waitBulk(api, holding, (s) => s.status === 'RUNNING' && s.progress.itemsDone > 0);

  const waitingExport = await startExport(api, "select * from files where size > 10");
  const waitingBatch = await startBatch(api, '{"operation":"createFolder","path":"/never"}', { metaData: { continueOnError: true } });
  const waitingPolled = await startExport(polled, 'select * from files');
  for (const id of [waitingExport, waitingBatch, waitingPolled]) assert.equal((await bulkStatus(api, id)).body.status, 'CREATED');

  const viaBulk = await cancelBulk(api, waitingExport);
  assert.equal(viaBulk.status, 200, JSON.stringify(viaBulk.body));
  assert.equal(viaBulk.body.status, 'CANCELLED', 'never started: cancelled at once');
  // The events API's cancel route ends a bulk job the same way.
  const viaEvents = await srv.api(`/instances/events/${waitingBatch}/cancel`, { method: 'PUT' });
  assert.equal(viaEvents.status, 200, await viaEvents.text());
  assert.equal((await cancelBulk(polled, waitingPolled)).body.status, 'CANCELLED');

  // The job holding the slot, cancelled mid-way, for comparison.
  assert.equal((await cancelBulk(api, holding)).status, 200);
  const midway = (await hookOf(holding)).body;
  assert.equal(midway.status, 'CANCELLED');
  assert.ok(midway.recordsCount > 0, 'it had written records');

  const exportHook = (await hookOf(waitingExport)).body;
  assert.deepEqual(Object.keys(exportHook).sort(), Object.keys(midway).sort(), 'the same fields as a job cancelled mid-way');
  assert.deepEqual(
    { ...exportHook, notificationId: 0, progress: null },
    {
      id: waitingExport,
      kind: 'query',
      status: 'CANCELLED',
      recordsCount: 0,
      recordsFailedCount: 0,
      query: 'select * from files where size > 10',
      eventId: waitingExport,
      instanceId,
      notificationId: 0,
      eventStatus: 'cancelled',
      statusCode: 409,
      response: { id: waitingExport, kind: 'query', status: 'CANCELLED', recordsCount: 0, recordsFailedCount: 0, query: 'select * from files where size > 10' },
      progress: null,
    },
  );
  assert.equal(typeof exportHook.notificationId, 'number');
  assert.equal(exportHook.progress.itemsDone, 0);

  const batchHook = (await hookOf(waitingBatch)).body;
  assert.equal(batchHook.id, waitingBatch);
  assert.equal(batchHook.kind, 'files');
  assert.equal(batchHook.status, 'CANCELLED');
  assert.equal(batchHook.recordsCount, 0);
  assert.equal(batchHook.recordsFailedCount, 0);
  assert.equal(batchHook.statusCode, 409);
  assert.deepEqual(batchHook.response, { id: waitingBatch, kind: 'files', status: 'CANCELLED', recordsCount: 0, recordsFailedCount: 0 });

  for (const id of [waitingExport, waitingBatch, waitingPolled]) {
    const status = (await bulkStatus(api, id)).body;
    assert.equal(status.status, 'CANCELLED');
    assert.equal(status.recordsCount, 0);
  }
  const event: any = await (await srv.api(`/instances/events/${waitingExport}`)).json();
  assert.deepEqual(event.notifiedData, exportHook, 'the events API shows what was sent');

  // The polled job's notification is kept, never sent: nothing arrives for it.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(rx.hooks.filter((h) => h.body?.eventId === waitingPolled).length, 0);
  const polledEvent: any = await (await srv.api(`/instances/events/${waitingPolled}`)).json();
  assert.equal(polledEvent.notification.status, 'queued', 'kept queued, as when a polled job ends after running');
  assert.deepEqual(polledEvent.deliveries, [], 'no delivery attempted');
  assert.equal(polledEvent.notifiedData.status, 'CANCELLED');
});
