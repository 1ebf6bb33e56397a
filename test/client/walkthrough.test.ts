/**
 * The README walkthrough through @ferry/client (issue 20), against a real Ferry over real HTTP:
 * create an instance, upload (from a Buffer, a Blob and a Node stream), list, copy, download to
 * a stream, metadata, search and links; then the asynchronous folder copy to a real webhook
 * receiver, waitForEvent, and the received webhook checked with verifyWebhook. Errors arrive as
 * FerryError with Ferry's status, message and request id.
 *
 * The client is loaded from its build (packages/client/dist, written by scripts/build.js after
 * the server's compile), as a user's program would load it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FAST_ASYNC, ORG_SECRET, USER_SECRET, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';

const KEY = 'client-walkthrough-key';
const clientUrl = new URL('../../../packages/client/dist/index.js', import.meta.url);

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

describe('@ferry/client: the README walkthrough', () => {
  let srv: TestServer;
  let rx: Receiver;
  let ferry: any;
  let client: any;
  let hub: any;
  let instanceId: number;

  before(async () => {
    ferry = await import(clientUrl.href);
    srv = await startTestServer(FAST_ASYNC);
    rx = await startReceiver();
    client = new ferry.FerryClient({ baseUrl: srv.base.replace(/\/elements\/api-v2$/, ''), userSecret: USER_SECRET, organizationSecret: ORG_SECRET });
    const instance = await client.instances.create({
      element: { key: 'localfs' },
      name: 'my disk',
      configuration: { root: 'walkthrough', 'event.notification.signature.key': KEY },
    });
    assert.equal(typeof instance.token, 'string');
    instanceId = instance.id;
    hub = client.instance(instance.token);
  });
  after(async () => {
    await srv?.close();
    await rx?.close();
  });

  it('uploads from a Buffer, a Blob and a Node stream, lists and downloads', async () => {
    const up = await hub.upload('/TestFolderCreate/testUploadFile.txt', Buffer.from('hello ferry\n'));
    assert.equal(up.path, '/TestFolderCreate/testUploadFile.txt');
    assert.equal(up.size, 12);
    await hub.upload('/TestFolderCreate/blob.txt', new Blob(['from a blob']), { tags: ['blob'] });
    const big = Buffer.alloc(300_000, 'x');
    const streamed = await hub.upload('/TestFolderCreate/streamed.bin', Readable.from([big.subarray(0, 100_000), big.subarray(100_000)]));
    assert.equal(streamed.size, 300_000);

    const page = await hub.list('/TestFolderCreate');
    assert.deepEqual(page.items.map((o: any) => o.name).sort(), ['blob.txt', 'streamed.bin', 'testUploadFile.txt']);
    assert.equal(page.total, 3);
    assert.equal(page.nextPage, null);
    assert.deepEqual((await hub.metadata('/TestFolderCreate/blob.txt')).tags, ['blob']);

    assert.equal(await text(await hub.download('/TestFolderCreate/testUploadFile.txt')), 'hello ferry\n');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-client-')), 'out.bin');
    await hub.downloadTo('/TestFolderCreate/streamed.bin', fs.createWriteStream(file));
    assert.deepEqual(fs.readFileSync(file), big);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it('copies, searches, links and updates metadata', async () => {
    const copy = await hub.copyFile('/TestFolderCreate/testUploadFile.txt', '/copies/hello-copy.txt');
    assert.equal(copy.path, '/copies/hello-copy.txt');
    assert.equal(await text(await hub.download('/copies/hello-copy.txt')), 'hello ferry\n');
    const found = await hub.search('hello');
    assert.deepEqual(found.items.map((o: any) => o.path), ['/copies/hello-copy.txt']);
    const link = await hub.fileLink('/copies/hello-copy.txt');
    assert.equal(await (await fetch(link.cloudElementsLink)).text(), 'hello ferry\n');
    const renamed = await hub.updateMetadata('/copies/hello-copy.txt', { name: 'renamed.txt' });
    assert.equal(renamed.path, '/copies/renamed.txt');
  });

  it('answers errors as FerryError with status, message and requestId', async () => {
    await assert.rejects(hub.metadata('/no/such/file.txt'), (e: any) => {
      assert.ok(e instanceof ferry.FerryError);
      assert.equal(e.status, 404);
      assert.match(e.requestId, /^[0-9a-f]{24}$/);
      assert.match(e.message, /no\/such\/file\.txt|not found|No /i);
      return true;
    });
    await assert.rejects(hub.copyFile('/TestFolderCreate/testUploadFile.txt', '/copies/renamed.txt'), (e: any) => e.status === 409);
  });

  it('copies a folder asynchronously: eventId at once, waitForEvent, a verified webhook', async () => {
    const accepted = await hub.async({ callbackUrl: rx.url, idempotencyKey: 'walkthrough-copy' }).copyFolder('/TestFolderCreate', '/testfoldercopy', {
      tags: ['TestFolderCopy'],
    });
    assert.equal(accepted.eventStatus, 'dispatched');
    assert.ok(Number.isInteger(accepted.eventId));
    // The same idempotency key names the same event.
    const again = await hub.async({ callbackUrl: rx.url, idempotencyKey: 'walkthrough-copy' }).copyFolder('/TestFolderCreate', '/testfoldercopy');
    assert.equal(again.eventId, accepted.eventId);

    const event = await client.waitForEvent(accepted.eventId, { timeoutMs: 20_000, until: 'notified' });
    assert.equal(event.execution.state, 'completed');
    assert.equal(event.execution.statusCode, 200);
    assert.equal(event.instanceId, instanceId);

    const [hook] = await rx.waitFor(1, 10_000, (h) => h.body?.eventId === accepted.eventId);
    const notification = await ferry.verifyWebhook(hook.raw, hook.headers, KEY);
    assert.equal(notification.eventId, accepted.eventId);
    assert.equal(notification.eventStatus, 'completed');
    await assert.rejects(ferry.verifyWebhook(hook.raw, hook.headers, 'wrong-key'), (e: any) => e.reason === 'invalid_signature');

    const copied = await hub.list('/testfoldercopy');
    assert.deepEqual(copied.items.map((o: any) => o.name).sort(), ['blob.txt', 'streamed.bin', 'testUploadFile.txt']);

    const events = await client.events.list({ instanceId });
    assert.ok(events.items.some((e: any) => e.id === accepted.eventId));
    const deliveries = await client.deliveries.list({ where: "status = 'delivered'" });
    assert.ok(deliveries.items.some((d: any) => d.eventId === accepted.eventId));
  });

  it('waitForEvent on an unknown event fails with a 404 FerryError', async () => {
    await assert.rejects(client.waitForEvent(999_999, { timeoutMs: 100 }), (e: any) => e instanceof ferry.FerryError && e.status === 404);
  });

  it('waitForEvent gives up after timeoutMs with a FerryError (status 0) naming the state', async () => {
    // Nothing listens on the closed receiver's port, so the notification is never delivered.
    const closed = await startReceiver();
    await closed.close();
    const { eventId } = await hub.async({ callbackUrl: closed.url }).createFolder('/never-notified');
    await assert.rejects(client.waitForEvent(eventId, { timeoutMs: 300, intervalMs: 50, until: 'notified' }), (e: any) => {
      assert.ok(e instanceof ferry.FerryError);
      assert.equal(e.status, 0);
      assert.match(e.message, new RegExp(`Event ${eventId} is still \\w+ after 300 ms`));
      return true;
    });
  });

  it('reads and changes settings, and manages instances', async () => {
    assert.equal((await client.settings.get())['notification.webhook.failure.policy'], 'retry');
    assert.equal((await client.settings.update({ 'notification.webhook.failure.policy': 'queue' }))['notification.webhook.failure.policy'], 'queue');
    await client.settings.update({ 'notification.webhook.failure.policy': 'retry' });
    assert.ok((await client.instances.list()).some((i: any) => i.id === instanceId));
    assert.equal((await client.instances.disable(instanceId)).disabled, true);
    await assert.rejects(hub.ping(), (e: any) => e.status === 403);
    assert.equal((await client.instances.enable(instanceId)).disabled, false);
    assert.ok((await hub.ping()).dateTime);
  });
});
