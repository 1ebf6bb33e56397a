/**
 * The documents-hub conformance suite against the `amazons3` element on an s3rver started by
 * this file (through the harness's counting proxy), plus what only S3 has: folder copies are
 * server-side (no object bytes through Ferry), and a dead or stopped endpoint answers 400 at
 * instance creation, 502 afterwards, and fails an async job cleanly.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { FAST_ASYNC, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { dispatched, expectStatus, hookOf, hubClient, q, runHubConformance, tree, upload, type Hub } from './conformance.js';

let srv: TestServer;
let s3: S3TestServer | null = null;
const probe = await startS3();
const skip = probe ? false : 's3rver could not start';
await probe?.stop();

before(async () => {
  srv = await startTestServer(FAST_ASYNC);
  s3 = await startS3();
});
after(async () => {
  await srv?.close();
  await s3?.stop();
});

runHubConformance('amazons3', () => srv, async () => s3!.configFor(await s3!.newBucket()), { skip });

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('hub: amazons3 specifics', { skip }, () => {
  let hub: Hub;
  let rx: Receiver;
  before(async () => {
    rx = await startReceiver();
    hub = hubClient(srv, await srv.instance('amazons3', s3!.configFor(await s3!.newBucket()), 's3-specifics'));
  });
  after(async () => {
    await rx?.close();
  });

  test('a folder copy through the hub moves zero object bytes through Ferry (server-side CopyObject)', async () => {
    for (let i = 0; i < 10; i++) await upload(hub, `/srv-copy/src/sub${i % 3}/f${i}.bin`, randomBytes(30_000));
    s3!.resetTraffic();
    await expectStatus(await hub.call(`/folders/copy${q('/srv-copy/src')}`, { method: 'POST', json: { path: '/srv-copy/dst' } }), 200);
    const t = s3!.traffic();
    assert.equal(t.objectBytesUp, 0, 'no object bytes uploaded by the copy');
    assert.equal(t.objectBytesDown, 0, 'no object bytes downloaded by the copy');
    assert.ok(t.requests.filter((r) => r.copySource !== undefined).length >= 10, 'CopyObject requests');
    assert.deepEqual(await tree(hub, '/srv-copy/dst'), await tree(hub, '/srv-copy/src'));
  });

  test('creating an instance against a dead endpoint → 400 with providerMessage', async () => {
    const config = { ...s3!.config, 'filemanagement.provider.endpoint': `http://127.0.0.1:${await closedPort()}` };
    const res = await srv.api('/instances', { method: 'POST', json: { element: { key: 'amazons3' }, name: 'dead', configuration: config } });
    const body = await expectStatus(res, 400);
    assert.equal(typeof body.providerMessage, 'string', JSON.stringify(body));
    assert.ok(body.providerMessage.length > 0);
  });

  test('an instance whose S3 endpoint stopped → 502 with providerMessage; an async job fails and notifies failed', async () => {
    const other = await startS3();
    assert.ok(other);
    let stopped = false;
    try {
      const h = hubClient(srv, await srv.instance('amazons3', other.config, 's3-to-stop'));
      await upload(h, '/x/a.txt', 'a');
      await other.stop();
      stopped = true;
      const down = await expectStatus(await h.call(`/files${q('/x/a.txt')}`), 502);
      assert.equal(typeof down.providerMessage, 'string', JSON.stringify(down));
      assert.ok(down.providerMessage.length > 0);
      const ping = await expectStatus(await h.call('/ping'), 502);
      assert.equal(typeof ping.providerMessage, 'string');
      const eventId = await dispatched(await h.callAsync(`/folders/copy${q('/x')}`, rx.url, { method: 'POST', json: { path: '/y' } }));
      const hook = await hookOf(rx, eventId, 60_000);
      assert.equal(hook.body.eventStatus, 'failed', JSON.stringify(hook.body));
      assert.equal(hook.body.statusCode, 502);
      assert.equal(typeof hook.body.response.providerMessage, 'string', JSON.stringify(hook.body.response));
    } finally {
      if (!stopped) await other.stop();
    }
  });
});
