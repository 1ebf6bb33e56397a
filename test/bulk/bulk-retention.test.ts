/**
 * Retention of bulk results (issue 17): results are kept FERRY_RESULT_RETENTION seconds after
 * the job ends (2 s here), sealed with the master key meanwhile, then deleted; a read after that
 * is a 404 saying the result expired, while the status stays readable.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { makeTree } from '../helpers/jobs.js';
import { bulkFiles, bulkStatus, errorsPage, jsonRecords, startBatch, startExport, waitBulk, type BulkApi } from './bulk-api.js';

let srv: TestServer;
let api: BulkApi;

before(async () => {
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off', FERRY_RESULT_RETENTION: '2' });
  const inst = await srv.instance('localfs', { root: 'kept' });
  api = { base: srv.base, hubAuth: inst.auth };
  makeTree(path.join(srv.config.localfsBase, 'kept'), 20);
});

after(async () => {
  await srv?.close();
});

test('results expire after FERRY_RESULT_RETENTION: deleted from disk, a read says they expired', { timeout: 60_000 }, async () => {
  const id = await startExport(api, 'select * from files');
  await waitBulk(api, id);
  const batch = await startBatch(api, '{"operation":"nope","path":"/x"}');
  await waitBulk(api, batch);
  assert.equal((await jsonRecords(api, id)).rows.length, 20);
  assert.equal((await errorsPage(api, batch)).body.length, 1);
  const records = path.join(srv.config.bulkDir, String(id), 'records');
  assert.ok(fs.existsSync(records));

  await new Promise((r) => setTimeout(r, 3500));
  const res = await bulkFiles(api, id, 'text/csv');
  assert.equal(res.status, 404);
  assert.match(((await res.json()) as any).message, /expired.*FERRY_RESULT_RETENTION/);
  const errors = await errorsPage(api, batch);
  assert.equal(errors.status, 404);
  assert.match(errors.body.message, /expired/);
  assert.equal(fs.existsSync(records), false, 'the sealed result is deleted');
  const status = await bulkStatus(api, id);
  assert.equal(status.status, 200);
  assert.equal(status.body.status, 'COMPLETED');
  assert.equal(status.body.recordsCount, 20);
});
