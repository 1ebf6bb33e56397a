/**
 * How Ferry serves the console (no browser needed): the app at /console/ with a strict CSP,
 * deep links answered with index.html, unknown files 404; and the two API additions the console
 * uses: the events listing's status filter and redelivery of one notification.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FAST_ASYNC, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';

const built = fs.existsSync(path.resolve('dist', 'console', 'index.html'));

describe('serving the console', { skip: built ? false : 'the console is not built (npm run build writes dist/console/)' }, () => {
  let server: TestServer;
  let origin: string;
  before(async () => {
    server = await startTestServer();
    origin = `http://127.0.0.1:${server.config.port}`;
  });
  after(() => server?.close());

  it('serves index.html at /console/ with a strict Content-Security-Policy', async () => {
    for (const url of ['/console', '/console/']) {
      const res = await fetch(origin + url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/html/);
      const csp = res.headers.get('content-security-policy')!;
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      const html = await res.text();
      assert.match(html, /<script type="module" src="\/console\/app\.js"><\/script>/);
      assert.doesNotMatch(html, /<script>/, 'no inline script');
    }
  });

  it('serves the bundle and stylesheet, and index.html for any deep link', async () => {
    const js = await fetch(`${origin}/console/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /javascript/);
    assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
    const css = await fetch(`${origin}/console/app.css`);
    assert.match(css.headers.get('content-type')!, /text\/css/);
    const deep = await fetch(`${origin}/console/events/42?x=1`);
    assert.equal(deep.status, 200);
    assert.equal(await deep.text(), fs.readFileSync(path.resolve('dist', 'console', 'index.html'), 'utf8'));
  });

  it('keeps the console out of the OpenAPI document', async () => {
    const doc = (await (await fetch(`${server.base}/docs/json`)).json()) as any;
    assert.deepEqual(Object.keys(doc.paths).filter((p) => p.startsWith('/console')), []);
  });

  it('answers 404 with the error body for a file that is not there, and never leaves dist/console', async () => {
    for (const url of ['/console/missing.js', '/console/..%2F..%2Fpackage.json', '/console/%2e%2e/%2e%2e/package.json']) {
      const res = await fetch(origin + url);
      assert.equal(res.status, 404, url);
      const body = (await res.json()) as any;
      assert.ok(body.message && !('name' in body), url);
    }
  });
});

describe('events API additions the console uses: status filter, one-notification redelivery', () => {
  let server: TestServer;
  let receiver: Receiver;
  before(async () => {
    server = await startTestServer(FAST_ASYNC);
    receiver = await startReceiver();
  });
  after(async () => {
    await receiver?.close();
    await server?.close();
  });

  it('status=NOTIFIED lists delivered events only; a bad status is a 400 naming the values', async () => {
    fs.mkdirSync(path.join(server.dataDir, 'files'), { recursive: true });
    const instance = await server.instance('localfs', { root: 'events-filter' });
    const accept = await fetch(`${server.base}/hubs/documents/ping`, {
      headers: { authorization: instance.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
    });
    assert.equal(accept.status, 200);
    const { eventId } = (await accept.json()) as any;
    await receiver.waitFor(1);
    let notified: any[] = [];
    for (let i = 0; i < 100 && notified.length === 0; i++) {
      notified = (await (await server.api('/instances/events?status=NOTIFIED')).json()) as any[];
      if (notified.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(notified.map((e) => e.id), [eventId]);
    assert.deepEqual(await (await server.api('/instances/events?status=DISPATCHED')).json(), []);
    const byInstance = (await (await server.api(`/instances/${instance.id}/events?status=NOTIFIED`)).json()) as any[];
    assert.deepEqual(byInstance.map((e) => e.id), [eventId]);
    const bad = await server.api('/instances/events?status=done');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as any).message, /status/);

    // Redelivering one notification: only a failed or queued one.
    const notificationId = notified[0].notification.id;
    const delivered = await server.api(`/notifications/subscriptions/deliveries/${notificationId}`, { method: 'PUT' });
    assert.equal(delivered.status, 409);
    assert.match(((await delivered.json()) as any).message, /is delivered; only a failed \(retry\) or queued notification/);
    const missing = await server.api('/notifications/subscriptions/deliveries/999999', { method: 'PUT' });
    assert.equal(missing.status, 404);
    assert.equal((await server.api('/notifications/subscriptions/deliveries/abc', { method: 'PUT' })).status, 400);
    const anonymous = await fetch(`${server.base}/notifications/subscriptions/deliveries/${notificationId}`, { method: 'PUT' });
    assert.equal(anonymous.status, 401);
  });
});
