/**
 * Bulk jobs on localfs (issue 17), against the real server with its runner in-process (so the
 * test can release its pause points): an export streams matching records to a result that reads
 * back as CSV (csv-parse) and NDJSON; its webhook verifies with standardwebhooks and with the
 * Open Connectors recipe; a batch applies its rows through the documents service and pages its
 * error rows 30 + 7; a cancel stops a job held at a pause point; bad queries and manifests are
 * 400s naming the token or the line, and start nothing; with no callback URL a job is polled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { releasePausePoints } from '../../src/testing/pause-points.js';
import { FAST_ASYNC, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { makeTree } from '../helpers/jobs.js';
import {
  bulkFiles,
  bulkStatus,
  cancelBulk,
  csvRecords,
  errorsPage,
  jsonRecords,
  postBatch,
  postQuery,
  startBatch,
  startExport,
  waitBulk,
  type BulkApi,
} from './bulk-api.js';

const KEY = 'bulk-signature-key-0123456789';
let srv: TestServer;
let rx: Receiver;
let api: BulkApi;
let polled: BulkApi;
let instanceId: number;
let root: string;

before(async () => {
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off', FERRY_BULK_MAX_ROWS: '500' });
  rx = await startReceiver();
  const inst = await srv.instance('localfs', { root: 'bulk', 'event.notification.signature.key': KEY });
  instanceId = inst.id;
  root = path.join(srv.config.localfsBase, 'bulk');
  api = { base: srv.base, hubAuth: inst.auth, callbackUrl: rx.url };
  polled = { base: srv.base, hubAuth: inst.auth };
  makeTree(path.join(root, 'photos'), 120, 25);
  makeTree(path.join(root, 'docs'), 30, 10);
});

after(async () => {
  await srv?.close();
  await rx?.close();
});

const hookOf = async (id: number) => (await rx.waitFor(1, 30_000, (h) => h.body?.id === id))[0];

/** Every object under `root` that the query below matches, by path. */
function expectedPhotos(minSize: number): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: string) => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, d.name);
      if (d.isDirectory()) walk(abs);
      else {
        const size = fs.statSync(abs).size;
        if (size > minSize) out.set('/' + path.relative(root, abs).split(path.sep).join('/'), size);
      }
    }
  };
  walk(path.join(root, 'photos'));
  return out;
}

test('an export streams the matching records; CSV (csv-parse) and NDJSON agree with the tree; the webhook is signed both ways', { timeout: 60_000 }, async () => {
  const q = "select * from files where path like '/photos/%' and size > 300 and directory = false";
  const id = await startExport(api, q);
  const hook = await hookOf(id);
  const body = hook.body;
  const expected = expectedPhotos(300);
  assert.ok(expected.size > 10 && expected.size < 120, `a real filter: ${expected.size}`);
  assert.equal(body.status, 'COMPLETED');
  assert.equal(body.recordsCount, expected.size);
  assert.equal(body.recordsFailedCount, 0);
  assert.equal(body.instanceId, instanceId);
  assert.equal(body.eventId, id);
  assert.equal(typeof body.notificationId, 'number');
  assert.equal(body.eventStatus, 'completed');

  // Both signatures, the way receivers check them.
  assert.equal(hook.headers['elements-webhook-signature'], 'sha256=' + crypto.createHmac('sha256', KEY).update(hook.raw).digest('base64'));
  const wh = new Webhook(Buffer.from(KEY).toString('base64'));
  const verified = wh.verify(hook.raw, {
    'webhook-id': String(hook.headers['webhook-id']),
    'webhook-timestamp': String(hook.headers['webhook-timestamp']),
    'webhook-signature': String(hook.headers['webhook-signature']),
  });
  assert.deepEqual(verified, body);

  const status = await waitBulk(api, id);
  assert.equal(status.status, 'COMPLETED');
  assert.equal(status.recordsCount, expected.size);
  assert.equal(status.progress.percentageComplete, 100);
  assert.ok(status.createdDate && status.completedDate);

  const csv = await csvRecords(api, id);
  assert.match(csv.contentType, /^text\/csv/);
  assert.deepEqual(csv.header.slice(0, 8), ['id', 'path', 'name', 'directory', 'size', 'createdDate', 'modifiedDate', 'tags']);
  assert.deepEqual(new Map(csv.rows.map((r) => [r.path, Number(r.size)])), expected);
  assert.equal(csv.rows.length, expected.size, 'each record once');
  for (const r of csv.rows) {
    assert.equal(r.directory, 'false');
    assert.equal(r.id, encodeURIComponent(encodeURIComponent(r.path)));
    assert.deepEqual(JSON.parse(r.tags), []);
  }
  const json = await jsonRecords(api, id);
  assert.match(json.contentType, /application\/json/);
  assert.deepEqual(new Map(json.rows.map((r) => [r.path, r.size])), expected);

  // At rest the result is sealed: no path appears in the stored bytes.
  const stored = fs.readFileSync(path.join(srv.config.bulkDir, String(id), 'records'));
  assert.equal(stored.includes(Buffer.from('/photos/')), false, 'the result file is encrypted');

  // The events API knows it like every async event.
  const ev = await srv.api(`/instances/events/${id}`);
  const event: any = await ev.json();
  assert.equal(event.execution.state, 'completed');
});

test('a bad CEQL query is a 400 naming the token; nothing is started', async () => {
  const { status, body } = await postQuery(api, "select * from files where colour = 'red'");
  assert.equal(status, 400);
  assert.match(body.message, /unknown field "colour" at position 27/);
  const bad = await postQuery(api, 'select * from files where size > big');
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /"big"/);
  const missing = await postQuery(api, '');
  assert.equal(missing.status, 400);
  assert.match(missing.body.message, /q query parameter/);
});

test('a job with no callback URL runs and is polled', { timeout: 60_000 }, async () => {
  const id = await startExport(polled, "select * from files where path like '/docs/%'");
  const status = await waitBulk(polled, id);
  assert.equal(status.status, 'COMPLETED');
  assert.equal(status.recordsCount, 33, '30 files in 3 folders');
  const json = await jsonRecords(polled, id);
  assert.equal(json.rows.length, 33);
  assert.equal(json.rows.filter((r) => r.directory).length, 3);
});

test('a batch applies its rows; 37 bad rows page 30 + 7 with row, operation, path, statusCode and message', { timeout: 60_000 }, async () => {
  const lines = ['operation,path,to,overwrite,tags'];
  for (let i = 0; i < 10; i++) lines.push(`copy,/docs/d0/f${i}.txt,/copies/f${i}.txt,false,`);
  lines.push('createFolder,/made/here,,,"[""a"",""b""]"');
  lines.push('setTags,/docs/d1/f10.txt,,,x;y');
  lines.push('move,/docs/d2/f20.txt,/moved/f20.txt,,');
  lines.push('delete,/docs/d2/f21.txt,,,');
  for (let i = 0; i < 20; i++) lines.push(`frobnicate,/docs/d0/f${i}.txt,,,`); // unknown operation
  for (let i = 0; i < 10; i++) lines.push(`copy,,/nowhere/${i},,`); // no path
  for (let i = 0; i < 7; i++) lines.push(`copy,/absent/${i}.txt,/x/${i}.txt,,`); // 404 from the service
  const id = await startBatch(api, lines.join('\n') + '\n', { filename: 'manifest.csv', metaData: { continueOnError: true, concurrency: 4 } });
  const hook = await hookOf(id);
  assert.equal(hook.body.status, 'COMPLETED');
  assert.equal(hook.body.recordsCount, 14);
  assert.equal(hook.body.recordsFailedCount, 37);

  for (let i = 0; i < 10; i++) assert.ok(fs.existsSync(path.join(root, 'copies', `f${i}.txt`)), `copy ${i} made`);
  assert.ok(fs.statSync(path.join(root, 'made/here')).isDirectory());
  assert.ok(fs.existsSync(path.join(root, 'moved/f20.txt')) && !fs.existsSync(path.join(root, 'docs/d2/f20.txt')));
  assert.equal(fs.existsSync(path.join(root, 'docs/d2/f21.txt')), false);
  const tags = await fetch(`${api.base}/hubs/documents/files/metadata?path=/docs/d1/f10.txt`, { headers: { authorization: api.hubAuth } });
  assert.deepEqual(((await tags.json()) as any).tags, ['x', 'y']);

  const first = await errorsPage(api, id, '?pageSize=30');
  assert.equal(first.status, 200);
  assert.equal(first.body.length, 30);
  assert.equal(first.count, '30');
  assert.ok(first.next);
  const second = await errorsPage(api, id, `?pageSize=30&nextPage=${encodeURIComponent(first.next!)}`);
  assert.equal(second.body.length, 7);
  assert.equal(second.count, '7');
  assert.equal(second.next, null);
  const all = [...first.body, ...second.body];
  assert.deepEqual(all.map((e) => e.row), [...Array(37).keys()].map((i) => i + 15));
  assert.deepEqual(Object.keys(all[0]).sort(), ['message', 'operation', 'path', 'row', 'statusCode']);
  assert.equal(all[0].operation, 'frobnicate');
  assert.equal(all[0].statusCode, 400);
  assert.match(all[0].message, /Unknown operation/);
  assert.equal(all[20].path, null);
  assert.match(all[20].message, /no path/);
  assert.equal(all[30].statusCode, 404);
  assert.equal(all[30].path, '/absent/0.txt');
});

test('continueOnError false stops at the first failed row: ERROR, rows before it done', { timeout: 60_000 }, async () => {
  const manifest = [
    { operation: 'createFolder', path: '/stop/a' },
    { operation: 'nope', path: '/stop/b' },
    { operation: 'createFolder', path: '/stop/c' },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n');
  const id = await startBatch(api, manifest, { metaData: { continueOnError: false, concurrency: 1 } });
  const status = await waitBulk(api, id);
  assert.equal(status.status, 'ERROR');
  assert.equal(status.recordsCount, 1);
  assert.equal(status.recordsFailedCount, 1);
  assert.match(status.message, /continueOnError is false/);
  assert.ok(fs.existsSync(path.join(root, 'stop/a')));
  assert.equal(fs.existsSync(path.join(root, 'stop/c')), false);
});

test('a manifest that is not UTF-8, does not parse, or is over the limit is a 400 naming the line; nothing runs', async () => {
  const notUtf8 = Buffer.concat([Buffer.from('operation,path\ncreateFolder,/bad1\ncreateFolder,/bad'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]);
  const a = await postBatch(api, notUtf8, { filename: 'm.csv' });
  assert.equal(a.status, 400);
  assert.match(a.body.message, /not UTF-8.*line 3/);
  const b = await postBatch(api, 'operation,path\ncreateFolder,"/bad2\ncreateFolder,/bad3\n', { filename: 'm.csv' });
  assert.equal(b.status, 400);
  assert.match(b.body.message, /line \d/);
  const c = await postBatch(api, '{"operation":"createFolder","path":"/bad4"}\n{not json\n', { filename: 'm.ndjson' });
  assert.equal(c.status, 400);
  assert.match(c.body.message, /line 2 is not JSON/);
  const big = ['operation,path', ...Array.from({ length: 501 }, (_, i) => `createFolder,/bad5/${i}`)].join('\n');
  const d = await postBatch(api, big, { filename: 'm.csv' });
  assert.equal(d.status, 400);
  assert.match(d.body.message, /more than 500 rows \(FERRY_BULK_MAX_ROWS\), at line 502/);
  const e = await postBatch(api, '{"operation":"createFolder","path":"/bad6"}', { metaData: { concurrency: 0 } });
  assert.equal(e.status, 400);
  assert.match(e.body.message, /concurrency/);
  for (const name of ['bad1', 'bad2', 'bad3', 'bad4', 'bad5', 'bad6']) assert.equal(fs.existsSync(path.join(root, name)), false, `${name} not made`);
});

test('cancel: CANCELLATION_PENDING then CANCELLED; results are not served before completion', { timeout: 60_000 }, async () => {
  process.env.FERRY_TEST_PAUSE = 'bulk-batch:1';
  try {
    const id = await startExport(api, "select * from files where path like '/photos/%'");
    const running = await waitBulk(api, id, (s) => s.status === 'RUNNING' && s.progress.itemsDone > 0);
    const early = await bulkFiles(api, id, 'text/csv');
    assert.equal(early.status, 404);
    assert.match(((await early.json()) as any).message, /status is RUNNING/);
    void running;
    const answer = await cancelBulk(api, id);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.ok(['CANCELLATION_PENDING', 'CANCELLED'].includes(answer.body.status), answer.body.status);
    releasePausePoints();
    const hook = await hookOf(id);
    assert.equal(hook.body.status, 'CANCELLED');
    assert.equal(hook.body.eventStatus, 'cancelled');
    const final = await waitBulk(api, id);
    assert.equal(final.status, 'CANCELLED');
    const after = await bulkFiles(api, id, 'application/json');
    assert.equal(after.status, 404);
    assert.match(((await after.json()) as any).message, /status is CANCELLED/);
    const unknown = await bulkStatus(api, 999999);
    assert.equal(unknown.status, 404);
  } finally {
    delete process.env.FERRY_TEST_PAUSE;
    releasePausePoints();
  }
});
