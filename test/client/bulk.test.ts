/**
 * `hub.bulk` of @ferry/client (issues 17 and 20) against a real Ferry over real HTTP: an export
 * started with a CEQL query, waited for, read back as objects and as CSV; a batch given as rows
 * and as a CSV stream, with `continueOnError`, its failed rows paged through `errors`; a signed
 * notification to a real receiver checked with verifyWebhook; a cancel of a job held mid-way;
 * and the errors as FerryError. The client is loaded from its build, as a user's program would.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { releasePausePoints } from '../../src/testing/pause-points.js';
import { FAST_ASYNC, USER_SECRET, ORG_SECRET, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';

const KEY = 'client-bulk-signature-key';
const clientUrl = new URL('../../../packages/client/dist/index.js', import.meta.url);

describe('@ferry/client: bulk jobs', () => {
  let srv: TestServer;
  let rx: Receiver;
  let ferry: any;
  let hub: any;
  let root: string;

  before(async () => {
    ferry = await import(clientUrl.href);
    // The runner in this process, so the pause point below holds the job here.
    srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off' });
    rx = await startReceiver();
    const client = new ferry.FerryClient({ baseUrl: srv.base.replace(/\/elements\/api-v2$/, ''), userSecret: USER_SECRET, organizationSecret: ORG_SECRET });
    const instance = await client.instances.create({
      element: { key: 'localfs' },
      name: 'bulk disk',
      configuration: { root: 'client-bulk', 'event.notification.signature.key': KEY },
    });
    hub = client.instance(instance.token);
    root = path.join(srv.config.localfsBase, 'client-bulk');
    for (let i = 0; i < 12; i++) {
      const dir = path.join(root, 'photos', `set${i % 3}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `p${i}.jpg`), Buffer.alloc(100 + i * 10, i));
    }
    fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
    fs.writeFileSync(path.join(root, 'docs', 'a.txt'), 'a');
  });
  after(async () => {
    delete process.env.FERRY_TEST_PAUSE;
    releasePausePoints();
    await srv?.close();
    await rx?.close();
  });

  it('exports what a query matches: records as objects and as CSV, and a verified notification', async () => {
    const started = await hub.bulk.query("select * from files where path like '/photos/%' and directory = false and size > 150", { callbackUrl: rx.url });
    assert.equal(started.status, 'CREATED');
    assert.ok(Number.isInteger(started.id));
    const done = await hub.bulk.wait(started.id, { timeoutMs: 30_000, intervalMs: 50 });
    assert.equal(done.status, 'COMPLETED');
    assert.equal(done.kind, 'query');
    // p6 … p11 are over 150 bytes (100 + 10·i).
    assert.equal(done.recordsCount, 6);

    const records = [];
    for await (const record of hub.bulk.records(started.id)) records.push(record);
    assert.deepEqual(records.map((r: any) => r.name).sort(), ['p10.jpg', 'p11.jpg', 'p6.jpg', 'p7.jpg', 'p8.jpg', 'p9.jpg']);
    for (const r of records) assert.equal(r.size, fs.statSync(path.join(root, r.path)).size);

    const csv = parse(await new Response(await hub.bulk.recordsCsv(started.id)).text(), { columns: true });
    assert.deepEqual(csv.map((r: any) => r.path).sort(), records.map((r: any) => r.path).sort());

    const [hook] = await rx.waitFor(1, 20_000, (h) => h.body?.id === started.id);
    const notification = await ferry.verifyWebhook(hook.raw, hook.headers, KEY);
    assert.equal(notification.status, 'COMPLETED');
    assert.equal(notification.recordsCount, 6);
  });

  it('runs a batch given as rows: rows done, failed rows paged through errors', async () => {
    const started = await hub.bulk.files(
      [
        { operation: 'copy', path: '/docs/a.txt', to: '/copied/a.txt' },
        { operation: 'createFolder', path: '/made' },
        { operation: 'delete', path: '/no/such/file.txt' },
        { operation: 'setTags', path: '/docs/a.txt', tags: ['kept'] },
        { operation: 'copy', path: '/docs/missing.txt', to: '/copied/missing.txt' },
      ],
      { continueOnError: true, concurrency: 2 },
    );
    assert.equal(started.status, 'CREATED');
    assert.equal(started.rowsTotal, 5);
    const done = await hub.bulk.wait(started.id, { timeoutMs: 30_000, intervalMs: 50 });
    assert.equal(done.status, 'COMPLETED');
    assert.equal(done.kind, 'files');
    assert.equal(done.recordsCount, 3);
    assert.equal(done.recordsFailedCount, 2);
    assert.equal(fs.readFileSync(path.join(root, 'copied', 'a.txt'), 'utf8'), 'a');
    assert.ok(fs.statSync(path.join(root, 'made')).isDirectory());
    assert.deepEqual((await hub.metadata('/docs/a.txt')).tags, ['kept']);

    const first = await hub.bulk.errors(started.id, { pageSize: 1 });
    assert.equal(first.items.length, 1);
    assert.ok(first.nextPage);
    const second = await hub.bulk.errors(started.id, { pageSize: 1, nextPage: first.nextPage });
    assert.equal(second.items.length, 1);
    assert.equal(second.nextPage, null);
    const failed = [...first.items, ...second.items].sort((a: any, b: any) => a.row - b.row);
    assert.deepEqual(
      failed.map((e: any) => [e.row, e.operation, e.statusCode]),
      [
        [3, 'delete', 404],
        [5, 'copy', 404],
      ],
    );
  });

  it('runs a batch from a CSV stream, and stops at the first failure without continueOnError (ERROR, naming the row)', async () => {
    const csv = ['operation,path', 'createFolder,/streamed', 'delete,/not/here', 'createFolder,/never'].join('\n');
    const started = await hub.bulk.files(Readable.from([Buffer.from(csv)]), { format: 'csv', continueOnError: false, concurrency: 1 });
    assert.equal(started.rowsTotal, 3);
    const done = await hub.bulk.wait(started.id, { timeoutMs: 30_000, intervalMs: 50 });
    assert.equal(done.status, 'ERROR');
    assert.match(done.message, /Row 2 failed and metaData.continueOnError is false/);
    assert.equal(done.recordsCount, 1);
    assert.equal(done.recordsFailedCount, 1);
    assert.ok(fs.existsSync(path.join(root, 'streamed')));
    assert.equal(fs.existsSync(path.join(root, 'never')), false);
  });

  it('cancels a job held mid-way: CANCELLATION_PENDING or CANCELLED at once, CANCELLED at the end', async () => {
    process.env.FERRY_TEST_PAUSE = 'bulk-batch:1';
    try {
      const { id } = await hub.bulk.query("select * from files where path like '/photos/%'");
      const deadline = Date.now() + 20_000;
      let running;
      do {
        running = await hub.bulk.status(id);
        if (running.status === 'RUNNING' && running.progress?.itemsDone > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      } while (Date.now() < deadline);
      assert.equal(running.status, 'RUNNING');
      await assert.rejects(hub.bulk.records(id).next(), (e: any) => e instanceof ferry.FerryError && e.status === 404 && /status is RUNNING/.test(e.message));
      const answer = await hub.bulk.cancel(id);
      assert.ok(['CANCELLATION_PENDING', 'CANCELLED'].includes(answer.status), answer.status);
      releasePausePoints();
      const done = await hub.bulk.wait(id, { timeoutMs: 30_000, intervalMs: 50 });
      assert.equal(done.status, 'CANCELLED');
    } finally {
      delete process.env.FERRY_TEST_PAUSE;
      releasePausePoints();
    }
  });

  it('answers refusals as FerryError naming what is wrong', async () => {
    await assert.rejects(hub.bulk.query('select * from nowhere'), (e: any) => e instanceof ferry.FerryError && e.status === 400 && e.message.length > 10);
    await assert.rejects(hub.bulk.files(new Uint8Array([0x6f, 0x70, 0xff, 0xfe, 0x0a]), { format: 'csv' }), (e: any) => e instanceof ferry.FerryError && e.status === 400 && /UTF-8/.test(e.message));
    await assert.rejects(hub.bulk.files([{ operation: 'createFolder', path: '/x' }], { concurrency: 0 }), (e: any) => e.status === 400 && /concurrency/.test(e.message));
    await assert.rejects(hub.bulk.status(987_654), (e: any) => e instanceof ferry.FerryError && e.status === 404 && /No bulk job 987654/.test(e.message));
    await assert.rejects(hub.bulk.wait(987_654, { timeoutMs: 100 }), (e: any) => e.status === 404);
  });
});
