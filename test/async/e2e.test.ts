/**
 * Asynchronous requests end to end (DESIGN §1.5, issue 3): a real Ferry over real HTTP, real
 * webhook receivers on loopback, real clocks (retry schedule shrunk by FAST_ASYNC). Covers the
 * original platform's documented folder-copy example with both signature schemes, callback URL
 * rules, async uploads and downloads, failed jobs, idempotency, event retrieval, organization
 * isolation, what the stored job holds (no secrets) and the body limit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import pg from 'pg';
import os from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { hashSecret } from '../../src/identity/secrets.js';
import {
  FAST_ASYNC,
  ORG_SECRET,
  USER_SECRET,
  multipartFile,
  startReceiver,
  startTestServer,
  type ReceivedHook,
  type Receiver,
  type TestServer,
} from '../helpers/server.js';

const KEY = 'e2e-signature-key-Ünïcode';
const MAX_BODY = 256 * 1024;

let srv: TestServer;
let rx: Receiver;
let inst: { id: number; token: string; auth: string };

before(async () => {
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_ASYNC_MAX_BODY: String(MAX_BODY) });
  rx = await startReceiver();
  inst = await srv.instance('localfs', { root: 'e2e', 'event.notification.signature.key': KEY });
});

after(async () => {
  await srv?.close();
  await rx?.close();
});

/** A hub call on `inst` (or another instance's auth), synchronous unless the headers say so. */
function hub(pathAndQuery: string, init: RequestInit & { json?: unknown } = {}, auth = inst.auth): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', auth);
  return srv.api(`/hubs/documents${pathAndQuery}`, { ...init, headers });
}

/** An asynchronous hub call with a callback header (unless `callback` is null). */
function asyncHub(
  pathAndQuery: string,
  init: RequestInit & { json?: unknown } = {},
  callback: string | null = rx.url,
  auth = inst.auth,
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('elements-async-request')) headers.set('elements-async-request', 'True');
  if (callback !== null) headers.set('elements-async-callback-url', callback);
  return hub(pathAndQuery, { ...init, headers }, auth);
}

/** Asserts the immediate async answer and returns its eventId. */
async function dispatched(res: Response): Promise<number> {
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.deepEqual(Object.keys(body).sort(), ['eventId', 'eventStatus']);
  assert.equal(body.eventStatus, 'dispatched');
  assert.ok(Number.isInteger(body.eventId) && body.eventId > 0, `eventId ${body.eventId}`);
  assert.equal(res.headers.get('location'), `/elements/api-v2/instances/events/${body.eventId}`);
  return body.eventId;
}

/** The webhook of one event at `receiver`. */
async function hookOf(eventId: number, receiver = rx, timeoutMs = 10_000): Promise<ReceivedHook> {
  const [hook] = await receiver.waitFor(1, timeoutMs, (h) => h.body?.eventId === eventId);
  return hook;
}

async function getJson(res: Response): Promise<{ status: number; body: any }> {
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

/** The newest event id of the organization (0 when none): shows whether anything was stored. */
async function latestEventId(): Promise<number> {
  const { status, body } = await getJson(await srv.api('/instances/events?pageSize=1'));
  assert.equal(status, 200);
  return body[0]?.id ?? 0;
}

/** Polls an event until `done` holds for it. */
async function eventUntil(eventId: number, done: (e: any) => boolean, timeoutMs = 10_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await getJson(await srv.api(`/instances/events/${eventId}`));
    assert.equal(status, 200, JSON.stringify(body));
    if (done(body)) return body;
    if (Date.now() > deadline) assert.fail(`event ${eventId} did not reach the expected state: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function upload(filePath: string, content: Buffer | string): Promise<void> {
  const res = await hub(`/files?path=${encodeURIComponent(filePath)}`, { method: 'POST', body: multipartFile(content, path.basename(filePath)) });
  assert.equal(res.status, 200, await res.text());
}

describe('the documented asynchronous folder copy', () => {
  test('answers dispatched at once, then delivers a webhook signed in both schemes, and the copy exists', async () => {
    const content = 'hello from the original platform documentation\n';
    await upload('/TestFolderCreate/testUploadFile.txt', content);

    const res = await hub('/folders/copy?path=/TestFolderCreate', {
      method: 'POST',
      headers: { 'Elements-Async-Request': 'True', 'Elements-Async-Callback-Url': rx.url },
      json: { path: '/testfoldercopy', tags: ['TestFolderCopy'], name: 'TestFolderCopy' },
    });
    const eventId = await dispatched(res);
    const hook = await hookOf(eventId);

    // The body, exactly in the documented shape (plus Ferry's `progress`, issue 16).
    const body = hook.body;
    assert.deepEqual(Object.keys(body).sort(), ['eventId', 'eventStatus', 'instanceId', 'notificationId', 'progress', 'response', 'statusCode']);
    assert.equal(body.eventId, eventId);
    assert.equal(body.instanceId, inst.id);
    assert.equal(body.eventStatus, 'completed');
    assert.equal(body.statusCode, 200);
    assert.ok(Number.isInteger(body.notificationId) && body.notificationId > 0);
    const events = body.response.events;
    assert.equal(events.length, 2, JSON.stringify(events));
    assert.equal(events[0].path, '/testfoldercopy');
    assert.equal(events[0].metadata.path, '/TestFolderCopy');
    assert.equal(events[0].metadata.name, 'TestFolderCopy');
    assert.equal(events[0].metadata.type, 'folder');
    assert.equal(events[1].path, '/testfoldercopy/testUploadFile.txt');
    assert.equal(events[1].metadata.path, '/TestFolderCopy/testUploadFile.txt');
    assert.equal(events[1].metadata.name, 'testUploadFile.txt');
    assert.equal(events[1].metadata.type, 'file');

    // Headers and both signatures, verified the ways receivers verify them.
    assert.match(String(hook.headers['content-type']), /^application\/json/);
    const webhookId = hook.headers['elements-webhook-id'];
    assert.ok(typeof webhookId === 'string' && webhookId.length > 0);
    assert.equal(hook.headers['webhook-id'], webhookId);
    const expected = 'sha256=' + crypto.createHmac('sha256', KEY).update(hook.raw).digest('base64');
    assert.equal(hook.headers['elements-webhook-signature'], expected);
    const wh = new Webhook(Buffer.from(KEY).toString('base64'));
    const verified = wh.verify(hook.raw, {
      'webhook-id': String(hook.headers['webhook-id']),
      'webhook-timestamp': String(hook.headers['webhook-timestamp']),
      'webhook-signature': String(hook.headers['webhook-signature']),
    });
    assert.deepEqual(verified, body);
    assert.throws(() =>
      wh.verify(hook.raw.replace('completed', 'failed'), {
        'webhook-id': String(hook.headers['webhook-id']),
        'webhook-timestamp': String(hook.headers['webhook-timestamp']),
        'webhook-signature': String(hook.headers['webhook-signature']),
      }),
    );

    // The copy is on disk, with the same bytes, and tagged as asked.
    const copied = path.join(srv.config.localfsBase, 'e2e', 'TestFolderCopy', 'testUploadFile.txt');
    assert.equal(fs.readFileSync(copied, 'utf8'), content);
    const meta = await getJson(await hub('/folders/metadata?path=/TestFolderCopy'));
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.body.tags, ['TestFolderCopy']);
  });
});

describe('callback URL and async header rules', () => {
  test('no callback header and none configured → 400 naming both, nothing stored', async () => {
    const before = await latestEventId();
    const res = await getJson(await asyncHub('/ping', {}, null));
    assert.equal(res.status, 400);
    assert.match(res.body.message, /Elements-Async-Callback-Url/);
    assert.match(res.body.message, /event\.notification\.callback\.url/);
    assert.equal(await latestEventId(), before);
  });

  test('the header overrides the instance configured URL; without it the configured URL is used', async () => {
    const configured = await startReceiver();
    try {
      const other = await srv.instance('localfs', { root: 'e2e-configured', 'event.notification.callback.url': configured.url }, 'configured');
      const viaHeader = await dispatched(await asyncHub('/ping', {}, rx.url, other.auth));
      const viaConfig = await dispatched(await asyncHub('/ping', {}, null, other.auth));
      const hook = await hookOf(viaHeader);
      assert.equal(hook.body.instanceId, other.id);
      assert.equal(hook.body.eventStatus, 'completed');
      assert.equal(hook.body.response.endpoint, 'localfs');
      await hookOf(viaConfig, configured);
      await eventUntil(viaHeader, (e) => e.status === 'NOTIFIED');
      await eventUntil(viaConfig, (e) => e.status === 'NOTIFIED');
      assert.equal(configured.hooks.filter((h) => h.body?.eventId === viaHeader).length, 0, 'header URL wins');
      assert.equal(rx.hooks.filter((h) => h.body?.eventId === viaConfig).length, 0, 'configured URL used without header');
      // Unsigned instance: no signature headers, ids still present.
      assert.equal(hook.headers['elements-webhook-signature'], undefined);
      assert.equal(hook.headers['webhook-signature'], undefined);
      assert.ok(hook.headers['elements-webhook-id']);
    } finally {
      await configured.close();
    }
  });

  for (const bad of ['http://10.0.0.1/x', 'http://169.254.169.254/latest/meta-data', 'ftp://127.0.0.1/x', 'not a url', '/relative/hook', 'http://user:pw@example.com/x']) {
    test(`a disallowed callback ${JSON.stringify(bad)} → 400, nothing stored`, async () => {
      const before = await latestEventId();
      const res = await getJson(await asyncHub('/ping', {}, bad));
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.ok(res.body.message);
      assert.equal(await latestEventId(), before);
    });
  }

  test('a disallowed configured callback URL → 400 at accept time', async () => {
    const other = await srv.instance('localfs', { root: 'e2e-private', 'event.notification.callback.url': 'http://192.168.1.20/hook' }, 'private');
    const before = await latestEventId();
    const res = await getJson(await asyncHub('/ping', {}, null, other.auth));
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(await latestEventId(), before);
  });

  test('loopback is refused when FERRY_EGRESS_ALLOW is empty', async () => {
    const strict = await startTestServer({ ...FAST_ASYNC, FERRY_EGRESS_ALLOW: '' });
    try {
      const i = await strict.instance('localfs', { root: 'strict' });
      for (const url of [rx.url, `http://localhost:${rx.port}/hook`, `http://[::1]:${rx.port}/hook`]) {
        const res = await strict.api('/hubs/documents/ping', {
          headers: { authorization: i.auth, 'elements-async-request': 'true', 'elements-async-callback-url': url },
        });
        const body: any = await res.json();
        assert.equal(res.status, 400, `${url}: ${JSON.stringify(body)}`);
      }
      const list: any = await (await strict.api('/instances/events')).json();
      assert.deepEqual(list, []);
    } finally {
      await strict.close();
    }
  });

  test('bad credentials → 401 before anything is stored', async () => {
    const before = await latestEventId();
    const res = await getJson(await asyncHub('/ping', {}, rx.url, `User ${USER_SECRET}, Element not-a-token`));
    assert.equal(res.status, 401);
    assert.equal(await latestEventId(), before);
  });

  test('Elements-Async-Request must be true or false', async () => {
    const before = await latestEventId();
    const maybe = await getJson(await asyncHub('/ping', { headers: { 'Elements-Async-Request': 'maybe' } }));
    assert.equal(maybe.status, 400);
    assert.match(maybe.body.message, /Elements-Async-Request/);
    const sync = await getJson(await asyncHub('/ping', { headers: { 'Elements-Async-Request': 'FALSE' } }));
    assert.equal(sync.status, 200);
    assert.equal(sync.body.endpoint, 'localfs', 'false runs synchronously');
    assert.equal(await latestEventId(), before);
  });
});

describe('asynchronous uploads and downloads', () => {
  test('a multipart upload lands and the webhook lists the file', async () => {
    const content = crypto.randomBytes(100_000);
    const eventId = await dispatched(
      await asyncHub('/files?path=/async/up%20load.bin&tags[]=a&tags[]=b', { method: 'POST', body: multipartFile(content, 'up load.bin') }),
    );
    const hook = await hookOf(eventId);
    assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
    assert.equal(hook.body.statusCode, 200);
    const events = hook.body.response.events;
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0].path, '/async/up load.bin');
    assert.equal(events[0].metadata.path, '/async/up load.bin');
    assert.equal(events[0].metadata.type, 'file');
    assert.equal(events[0].metadata.size, content.length);
    assert.deepEqual(fs.readFileSync(path.join(srv.config.localfsBase, 'e2e', 'async', 'up load.bin')), content);
    const meta = await getJson(await hub('/files/metadata?path=/async/up%20load.bin'));
    assert.deepEqual(meta.body.tags, ['a', 'b']);
  });

  test('an empty file downloads asynchronously as a stored result too', async () => {
    await upload('/async/empty.txt', '');
    const eventId = await dispatched(await asyncHub('/files?path=/async/empty.txt'));
    const hook = await hookOf(eventId);
    assert.equal(hook.body.statusCode, 200, JSON.stringify(hook.body));
    assert.deepEqual(Object.keys(hook.body.response).sort(), ['contentType', 'resultUrl', 'size']);
    assert.equal(hook.body.response.size, 0);
    const res = await srv.api(hook.body.response.resultUrl.slice(srv.base.length));
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test('a download returns {contentType, size, resultUrl}; resultUrl serves the bytes to the organization only', async () => {
    const content = crypto.randomBytes(70_000);
    await upload('/async/down.bin', content);
    const eventId = await dispatched(await asyncHub('/files?path=/async/down.bin'));
    const hook = await hookOf(eventId);
    assert.equal(hook.body.eventStatus, 'completed');
    assert.equal(hook.body.statusCode, 200);
    const response = hook.body.response;
    assert.deepEqual(Object.keys(response).sort(), ['contentType', 'resultUrl', 'size']);
    assert.equal(response.size, content.length);
    assert.equal(typeof response.contentType, 'string');
    assert.ok(response.resultUrl.startsWith(srv.base), response.resultUrl);
    const unauthenticated = await fetch(response.resultUrl);
    assert.equal(unauthenticated.status, 401);
    await unauthenticated.arrayBuffer();
    const res = await srv.api(response.resultUrl.slice(srv.base.length));
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);
  });
});

describe('other operations replayed asynchronously', () => {
  test('a nested folder copy lists the folder and every descendant', async () => {
    await upload('/tree/a.txt', 'a');
    await upload('/tree/sub/b.txt', 'b');
    await upload('/tree/sub/deeper/c.txt', 'c');
    const eventId = await dispatched(await asyncHub('/folders/copy?path=/tree', { method: 'POST', json: { path: '/tree-copy' } }));
    const hook = await hookOf(eventId);
    assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
    const listed = hook.body.response.events.map((e: any) => `${e.metadata.type} ${e.path} ${e.metadata.path}`).sort();
    assert.deepEqual(listed, [
      'file /tree-copy/a.txt /tree-copy/a.txt',
      'file /tree-copy/sub/b.txt /tree-copy/sub/b.txt',
      'file /tree-copy/sub/deeper/c.txt /tree-copy/sub/deeper/c.txt',
      'folder /tree-copy /tree-copy',
      'folder /tree-copy/sub /tree-copy/sub',
      'folder /tree-copy/sub/deeper /tree-copy/sub/deeper',
    ]);
    assert.equal(fs.readFileSync(path.join(srv.config.localfsBase, 'e2e', 'tree-copy', 'sub', 'deeper', 'c.txt'), 'utf8'), 'c');
  });

  test('a rename by PATCH and a delete report the objects they touched', async () => {
    await upload('/ops/old.txt', 'old');
    const renamed = await dispatched(await asyncHub('/files/metadata?path=/ops/old.txt', { method: 'PATCH', json: { path: '/ops/new.txt' } }));
    const rh = await hookOf(renamed);
    assert.equal(rh.body.eventStatus, 'completed', JSON.stringify(rh.body));
    assert.ok(rh.body.response.events.some((e: any) => e.metadata.path === '/ops/new.txt' && e.metadata.type === 'file'), JSON.stringify(rh.body.response));
    const deleted = await dispatched(await asyncHub('/folders?path=/ops', { method: 'DELETE' }));
    const dh = await hookOf(deleted);
    assert.equal(dh.body.eventStatus, 'completed', JSON.stringify(dh.body));
    assert.ok(dh.body.response.events.some((e: any) => e.path === '/ops' && e.metadata.type === 'folder'), JSON.stringify(dh.body.response));
    assert.ok(!fs.existsSync(path.join(srv.config.localfsBase, 'e2e', 'ops')));
  });

  test('a JSON read returns the synchronous body; a by-id download works too', async () => {
    await upload('/reads/one.txt', 'one');
    await upload('/reads/two.txt', 'two two');
    const sync = await getJson(await hub('/folders/contents?path=/reads'));
    assert.equal(sync.status, 200);
    const listing = await dispatched(await asyncHub('/folders/contents?path=/reads'));
    const lh = await hookOf(listing);
    assert.equal(lh.body.statusCode, 200);
    assert.deepEqual(lh.body.response, sync.body);

    const id = encodeURIComponent(encodeURIComponent('/reads/two.txt'));
    const byId = await dispatched(await asyncHub(`/files/${id}`));
    const bh = await hookOf(byId);
    assert.equal(bh.body.statusCode, 200, JSON.stringify(bh.body));
    const res = await srv.api(bh.body.response.resultUrl.slice(srv.base.length));
    assert.equal(await res.text(), 'two two');
  });
});

describe('failures and idempotency', () => {
  test('a malformed Idempotency-Key → 400', async () => {
    const before = await latestEventId();
    const res = await getJson(await asyncHub('/ping', { headers: { 'Idempotency-Key': 'k'.repeat(256) } }));
    assert.equal(res.status, 400);
    assert.equal(await latestEventId(), before);
  });

  test('a failing job → eventStatus failed, the error status and body', async () => {
    const eventId = await dispatched(
      await asyncHub('/folders/copy?path=/does/not/exist', { method: 'POST', json: { path: '/nowhere' } }),
    );
    const hook = await hookOf(eventId);
    assert.equal(hook.body.eventStatus, 'failed');
    assert.equal(hook.body.statusCode, 404);
    assert.equal(typeof hook.body.response.message, 'string');
    assert.match(hook.body.response.requestId, /^[0-9a-f]{24}$/);
    assert.ok(!fs.existsSync(path.join(srv.config.localfsBase, 'e2e', 'nowhere')));
    const event = await eventUntil(eventId, (e) => e.status === 'NOTIFIED');
    assert.equal(event.execution.state, 'failed');
    assert.equal(event.execution.statusCode, 404);
  });

  test('the same Idempotency-Key returns the same eventId and runs the job once', async () => {
    const key = `idem-${crypto.randomUUID()}`;
    const send = () =>
      asyncHub('/files?path=/idem/once.txt', { method: 'POST', headers: { 'Idempotency-Key': key }, body: multipartFile('once') });
    const first = await dispatched(await send());
    const concurrent = await Promise.all([send(), send(), send()].map(async (p) => dispatched(await p)));
    assert.deepEqual(concurrent, [first, first, first]);
    const hook = await hookOf(first);
    assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
    const again = await dispatched(await send());
    assert.equal(again, first);
    const otherKey = await dispatched(
      await asyncHub('/ping', { headers: { 'Idempotency-Key': `${key}-other` } }),
    );
    assert.notEqual(otherKey, first);
    await hookOf(otherKey);
    // Keys are per instance: the same key on another instance is another event.
    const other = await srv.instance('localfs', { root: 'e2e-idem' }, 'idem');
    const elsewhere = await dispatched(await asyncHub('/ping', { headers: { 'Idempotency-Key': key } }, rx.url, other.auth));
    assert.notEqual(elsewhere, first);
    assert.equal((await hookOf(elsewhere)).body.instanceId, other.id);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rx.hooks.filter((h) => h.body?.eventId === first).length, 1, 'one webhook for the key');
    const events: any[] = (await getJson(await srv.api(`/instances/${inst.id}/events?pageSize=500`))).body;
    assert.equal(events.filter((e) => e.id === first).length, 1);
  });
});

describe('event retrieval', () => {
  test('DISPATCHED → CONSUMED → NOTIFIED with execution and deliveries, by event and by instance', async () => {
    const slow = await startReceiver();
    let attempts = 0;
    slow.respond = () => (attempts++ === 0 ? { status: 503, headers: { 'Retry-After': '1' } } : { status: 200 });
    try {
      const eventId = await dispatched(await asyncHub('/ping', {}, slow.url));
      // While the receiver asks to wait, the job is done but not delivered.
      const consumed = await eventUntil(eventId, (e) => e.deliveries.length === 1);
      assert.equal(consumed.status, 'CONSUMED');
      assert.equal(consumed.id, eventId);
      assert.equal(consumed.instanceId, inst.id);
      assert.equal(consumed.execution.state, 'completed');
      assert.equal(consumed.execution.statusCode, 200);
      assert.ok(consumed.execution.startedDate && consumed.execution.finishedDate);
      assert.equal(consumed.deliveries[0].statusCode, 503);
      assert.equal(consumed.deliveries[0].url, slow.url);
      assert.ok(!Number.isNaN(Date.parse(consumed.eventDate)));
      const notified = await eventUntil(eventId, (e) => e.status === 'NOTIFIED');
      assert.equal(notified.deliveries.length, 2);
      assert.equal(notified.deliveries[1].statusCode, 200);
      assert.equal(notified.notifiedData.eventId, eventId);
      assert.equal(notified.notifiedData.eventStatus, 'completed');
      const gap = Date.parse(notified.deliveries[1].date) - Date.parse(notified.deliveries[0].date);
      assert.ok(gap >= 900, `Retry-After: 1 honoured (gap ${gap} ms)`);

      const byInstance = await getJson(await srv.api(`/instances/${inst.id}/events/${eventId}`));
      assert.equal(byInstance.status, 200);
      assert.equal(byInstance.body.id, eventId);
      assert.equal(byInstance.body.status, 'NOTIFIED');
      const list = await getJson(await srv.api(`/instances/${inst.id}/events`));
      assert.ok(list.body.some((e: any) => e.id === eventId));
      const all = await getJson(await srv.api('/instances/events'));
      assert.ok(all.body.some((e: any) => e.id === eventId));
      // Paging: newest first, an opaque token to the next page, no overlap.
      const first = await srv.api(`/instances/${inst.id}/events?pageSize=2`);
      const page1: any[] = await first.json();
      assert.equal(page1.length, 2);
      assert.equal(first.headers.get('elements-returned-count'), '2');
      const token = first.headers.get('elements-next-page-token');
      assert.ok(token);
      const page2: any[] = await (await srv.api(`/instances/${inst.id}/events?pageSize=2&nextPage=${encodeURIComponent(token)}`)).json();
      assert.ok(page2.length > 0);
      assert.ok(page1[0].id > page1[1].id && page1[1].id > page2[0].id);
      const other = await srv.instance('localfs', { root: 'e2e-other' }, 'other');
      assert.equal((await srv.api(`/instances/${other.id}/events/${eventId}`)).status, 404);
      assert.equal((await srv.api('/instances/events/999999999')).status, 404);
    } finally {
      await slow.close();
    }
  });

  test('a job stored by an API-only node is DISPATCHED, holds no secret, and runs after a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-e2e-api-'));
    const receiver = await startReceiver();
    let api: TestServer | null = await startTestServer({ ...FAST_ASYNC, FERRY_ROLE: 'api' }, dir);
    let full: TestServer | null = null;
    try {
      const signatureKey = `sig-${crypto.randomBytes(12).toString('hex')}`;
      const i = await api.instance('localfs', { root: 'api-only', 'event.notification.signature.key': signatureKey });
      const auth = `User ${USER_SECRET}, Organization ${ORG_SECRET}, Element ${i.token}`;
      const res = await api.api('/hubs/documents/files?path=/stored.txt', {
        method: 'POST',
        headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url, cookie: 'session=cookie-secret-value' },
        body: multipartFile('stored bytes', 'stored.txt'),
      });
      const eventId = await dispatched(res);
      const waiting: any = await (await api.api(`/instances/events/${eventId}`)).json();
      assert.equal(waiting.status, 'DISPATCHED');
      assert.equal(waiting.execution.state, 'dispatched');
      assert.equal(waiting.notification, null);
      assert.deepEqual(waiting.deliveries, []);

      // The database (and its WAL) never holds a secret of the caller or the instance.
      const bytes = await storedBytes(api, dir);
      assert.ok(bytes.includes('/stored.txt'), 'the job is in the database');
      // An upload's body waits in the spool (issue 25), not in the database.
      assert.equal(bytes.includes('stored bytes'), false, 'the upload body is not in the database');
      const spooled = fs.readdirSync(path.join(dir, 'spool')).map((f) => fs.readFileSync(path.join(dir, 'spool', f), 'latin1'));
      assert.equal(spooled.filter((b) => b.includes('stored bytes')).length, 1, 'the upload body is in the spool');
      assert.ok(spooled.every((b) => !b.includes(USER_SECRET) && !b.includes(i.token)), 'no secret in the spool');
      for (const secret of [USER_SECRET, ORG_SECRET, i.token, signatureKey, 'cookie-secret-value']) {
        assert.equal(bytes.includes(secret), false, `a secret (${secret.slice(0, 6)}…) is stored in ferry.db`);
      }
      assert.equal(bytes.includes('Element '), false, 'no Authorization header stored');

      await api.close();
      api = null;
      // What a client told that the job ended finds: its body is gone from the spool already.
      let spoolAtWebhook: string[] | null = null;
      receiver.respond = () => {
        spoolAtWebhook ??= fs.readdirSync(path.join(dir, 'spool'));
        return { status: 200 };
      };
      full = await startTestServer(FAST_ASYNC, dir);
      const hook = await hookOf(eventId, receiver);
      assert.deepEqual(spoolAtWebhook, [], 'the spool file outlived its job');
      assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
      assert.equal(hook.body.response.events[0].path, '/stored.txt');
      assert.equal(fs.readFileSync(path.join(full.config.localfsBase, 'api-only', 'stored.txt'), 'utf8'), 'stored bytes');
      assert.equal(hook.headers['elements-webhook-signature'], 'sha256=' + crypto.createHmac('sha256', signatureKey).update(hook.raw).digest('base64'));
    } finally {
      await api?.close();
      await full?.close();
      await receiver.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('one organization cannot read another organization’s events or results', async () => {
    const content = crypto.randomBytes(1000);
    await upload('/iso/secret.bin', content);
    const eventId = await dispatched(await asyncHub('/files?path=/iso/secret.bin'));
    const hook = await hookOf(eventId);
    await eventUntil(eventId, (e) => e.status === 'NOTIFIED');

    const orgSecret = `org2-${crypto.randomBytes(24).toString('hex')}`;
    const userSecret = `user2-${crypto.randomBytes(24).toString('hex')}`;
    const org = await srv.ferry.store.createOrganization({ name: `second-${crypto.randomUUID()}`, secretHash: hashSecret(orgSecret) });
    await srv.ferry.store.createUser({
      organizationId: org.id,
      emailAddress: 'second@example.com',
      firstName: 'Second',
      lastName: 'Org',
      secretHash: hashSecret(userSecret),
    });
    const auth2 = `User ${userSecret}, Organization ${orgSecret}`;
    const as2 = (p: string) => srv.api(p, { headers: { authorization: auth2 } });

    assert.equal((await as2('/instances/events')).status, 200);
    const list: any[] = await (await as2('/instances/events')).json();
    assert.equal(list.some((e) => e.id === eventId), false);
    const one = await getJson(await as2(`/instances/events/${eventId}`));
    assert.equal(one.status, 404);
    assert.equal(JSON.stringify(one.body).includes('secret.bin'), false);
    assert.equal((await as2(`/instances/${inst.id}/events/${eventId}`)).status, 404);
    assert.equal((await as2(`/instances/${inst.id}/events`)).status, 404);
    assert.equal((await as2(hook.body.response.resultUrl.slice(srv.base.length))).status, 404);
    const deliveries: any[] = await (await as2('/notifications/subscriptions/deliveries')).json();
    assert.deepEqual(deliveries, []);
    // And its user cannot use the first organization's instance token.
    const cross = await hub('/ping', {}, `User ${userSecret}, Element ${inst.token}`);
    assert.equal(cross.status, 401);
  });
});

describe('fairness between instances', () => {
  test('one instance’s backlog neither stalls another instance nor exceeds its concurrency limit', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-e2e-fair-'));
    const receiver = await startReceiver();
    const env = { ...FAST_ASYNC, FERRY_INSTANCE_CONCURRENCY: '1', FERRY_JOB_CONCURRENCY: '2' };
    let server: TestServer | null = await startTestServer({ ...env, FERRY_ROLE: 'api' }, dir);
    try {
      const busy = await server.instance('localfs', { root: 'busy' }, 'busy');
      const quiet = await server.instance('localfs', { root: 'quiet' }, 'quiet');
      const send = async (i: { auth: string }) => {
        const res = await server!.api('/hubs/documents/ping', {
          headers: { authorization: i.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
        });
        return dispatched(res);
      };
      // A burst on one instance, stored by an API-only node, then one job of another instance.
      const burst: number[] = [];
      for (let i = 0; i < 400; i += 20) burst.push(...(await Promise.all(Array.from({ length: 20 }, () => send(busy)))));
      const lone = await send(quiet);
      await server.close();
      server = await startTestServer(env, dir);

      await hookOf(lone, receiver, 20_000);
      await receiver.waitFor(burst.length + 1, 30_000);
      const events: any[] = [];
      let next: string | null = '';
      while (next !== null) {
        const res: Response = await server.api(`/instances/events?pageSize=500${next ? `&nextPage=${next}` : ''}`);
        events.push(...((await res.json()) as any[]));
        next = res.headers.get('elements-next-page-token');
      }
      const lonely = events.find((e) => e.id === lone);
      const busyEvents = events.filter((e) => e.instanceId === busy.id);
      assert.equal(busyEvents.length, burst.length);
      const finished = (e: any) => Date.parse(e.execution.finishedDate);
      const before = busyEvents.filter((e) => finished(e) < finished(lonely)).length;
      assert.ok(before <= 10, `${before} of the burst's jobs finished before the other instance's single job`);
      // FERRY_INSTANCE_CONCURRENCY=1: the burst's jobs never overlap. Jobs take well under a
      // millisecond, so several start in the same one: order ties by finish time.
      const runs = busyEvents
        .map((e) => [Date.parse(e.execution.startedDate), finished(e)])
        .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      for (let i = 1; i < runs.length; i++) {
        assert.ok(runs[i][0] >= runs[i - 1][1], `busy jobs ${i - 1} and ${i} overlapped: ${runs[i - 1]} / ${runs[i]}`);
      }
    } finally {
      await server?.close();
      await receiver.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('handoff', () => {
  test('jobs start in the order they were accepted, also when accepts arrive while the runner is full', async () => {
    const receiver = await startReceiver();
    const server = await startTestServer({ ...FAST_ASYNC, FERRY_INSTANCE_CONCURRENCY: '1', FERRY_JOB_CONCURRENCY: '1' });
    try {
      const i = await server.instance('localfs', { root: 'order' }, 'order');
      const send = async () => {
        const res = await server.api('/hubs/documents/ping', {
          headers: { authorization: i.auth, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
        });
        return dispatched(res);
      };
      const ids: number[] = [];
      for (let round = 0; round < 6; round++) ids.push(...(await Promise.all(Array.from({ length: 10 }, send))));
      await receiver.waitFor(ids.length, 20_000);
      const res = await server.api('/instances/events?pageSize=200');
      const events = ((await res.json()) as any[]).filter((e) => ids.includes(e.id)).sort((a, b) => a.id - b.id);
      assert.equal(events.length, ids.length);
      const started = events.map((e) => Date.parse(e.execution.startedDate));
      for (let k = 1; k < started.length; k++) {
        assert.ok(started[k] >= started[k - 1], `event ${events[k].id} started before the earlier event ${events[k - 1].id}`);
      }
      for (const id of ids) {
        const deadline = Date.now() + 10_000;
        while (((await (await server.api(`/instances/events/${id}`)).json()) as any).status !== 'NOTIFIED') {
          assert.ok(Date.now() < deadline, `event ${id} was never NOTIFIED`);
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    } finally {
      await server.close();
      await receiver.close();
    }
  });
});

describe('body limit', () => {
  test('an async body over FERRY_ASYNC_MAX_BODY → 413, nothing stored (declared and chunked)', async () => {
    const before = await latestEventId();
    const big = crypto.randomBytes(MAX_BODY + 1);
    const declared = await getJson(await asyncHub('/files?path=/big/declared.bin', { method: 'POST', body: multipartFile(big, 'declared.bin') }));
    assert.equal(declared.status, 413, JSON.stringify(declared.body));
    assert.match(declared.body.message, /FERRY_ASYNC_MAX_BODY/);

    const form = new Response(multipartFile(big, 'chunked.bin'));
    const chunked = await getJson(
      await asyncHub('/files?path=/big/chunked.bin', {
        method: 'POST',
        headers: { 'content-type': form.headers.get('content-type')! },
        body: form.body,
        duplex: 'half',
      } as RequestInit),
    );
    assert.equal(chunked.status, 413, JSON.stringify(chunked.body));
    assert.equal(await latestEventId(), before);
    assert.ok(!fs.existsSync(path.join(srv.config.localfsBase, 'e2e', 'big')));

    // Just under the limit is accepted.
    const small = crypto.randomBytes(MAX_BODY - 1024);
    const ok = await dispatched(await asyncHub('/files?path=/big/ok.bin', { method: 'POST', body: multipartFile(small, 'ok.bin') }));
    assert.equal((await hookOf(ok)).body.eventStatus, 'completed');
  });
});

/** Everything the store holds, as bytes: the SQLite files, or a dump of the PostgreSQL tables. */
async function storedBytes(server: TestServer, dir: string): Promise<Buffer> {
  if (server.ferry.store.capabilities.name === 'sqlite') {
    return Buffer.concat(
      ['ferry.db', 'ferry.db-wal'].filter((f) => fs.existsSync(path.join(dir, f))).map((f) => fs.readFileSync(path.join(dir, f))),
    );
  }
  const client = new pg.Client({ connectionString: server.config.databaseUrl ?? undefined });
  await client.connect();
  try {
    const schema = server.config.databaseSchema;
    const parts: Buffer[] = [];
    for (const table of ['organizations', 'users', 'instances', 'events', 'jobs', 'idempotency_keys']) {
      const { rows } = await client.query(`SELECT t::text AS row FROM ${schema}.${table} t`);
      for (const r of rows) parts.push(Buffer.from(r.row));
    }
    const jobs = await client.query(`SELECT body FROM ${schema}.jobs WHERE body IS NOT NULL`);
    for (const r of jobs.rows) parts.push(r.body);
    return Buffer.concat(parts);
  } finally {
    await client.end();
  }
}
