/**
 * Change-event configuration at the API edge: the catalog shows polling support for every
 * element; instances accept the polling keys on create, PUT and PATCH; bad values answer 400
 * naming the key and change nothing.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { parseChangeSettings } from '../../src/changes/settings.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_POLLER_MIN_INTERVAL: '5' });
});
after(async () => srv?.close());

const CALLBACK = 'http://127.0.0.1:9/hook';

test('GET /elements/{key} shows events {supported: true, methods: ["polling"]} for every element', async () => {
  for (const key of ['localfs', 'amazons3', 'sftp']) {
    const body: any = await (await srv.api(`/elements/${key}`)).json();
    assert.deepEqual(body.events, { supported: true, methods: ['polling'] });
    const keys = body.configuration.map((c: any) => c.key);
    for (const k of ['event.vendor.type', 'event.poller.refresh_interval', 'event.poller.configuration']) assert.ok(keys.includes(k), `${key} lacks ${k}`);
  }
});

test('an instance with polling keys answers eventsEnabled: true and keeps them', async () => {
  const { body } = await srv.instance('localfs', {
    root: 'cfg-ok',
    'event.notification.enabled': 'true',
    'event.notification.callback.url': CALLBACK,
    'event.vendor.type': 'polling',
    'event.poller.refresh_interval': '0.5',
    'event.poller.configuration': { path: '/inbox', recursive: false },
  });
  assert.equal(body.eventsEnabled, true);
  assert.equal(body.configuration['event.poller.refresh_interval'], '0.5');
  assert.deepEqual(JSON.parse(body.configuration['event.poller.configuration']), { path: '/inbox', recursive: false });
});

test('bad change configuration → 400 naming the key; nothing is created or changed', async () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['enabled without callback', { 'event.notification.enabled': 'true' }, /event\.notification\.callback\.url/],
    ['non-numeric interval', { 'event.poller.refresh_interval': 'soon' }, /event\.poller\.refresh_interval/],
    ['negative interval', { 'event.poller.refresh_interval': '-1' }, /event\.poller\.refresh_interval/],
    ['zero interval', { 'event.poller.refresh_interval': '0' }, /event\.poller\.refresh_interval/],
    ['other vendor type', { 'event.vendor.type': 'webhook' }, /event\.vendor\.type/],
    ['path outside the root', { 'event.poller.configuration': { path: '/../etc' } }, /event\.poller\.configuration.*root/],
    ['relative path', { 'event.poller.configuration': { path: 'inbox' } }, /event\.poller\.configuration/],
    ['unknown poller key', { 'event.poller.configuration': { path: '/a', depth: 3 } }, /event\.poller\.configuration.*depth/],
    ['not JSON', { 'event.poller.configuration': '{path' }, /event\.poller\.configuration/],
    ['recursive not boolean', { 'event.poller.configuration': { recursive: 'yes' } }, /event\.poller\.configuration.*recursive/],
  ];
  const count = async () => ((await (await srv.api('/instances')).json()) as any[]).length;
  const before = await count();
  for (const [what, extra, message] of cases) {
    const res = await srv.api('/instances', { method: 'POST', json: { element: { key: 'localfs' }, name: what, configuration: { root: 'cfg-bad', ...extra } } });
    const body: any = await res.json();
    assert.equal(res.status, 400, `${what}: ${JSON.stringify(body)}`);
    assert.match(body.message, message, what);
  }
  assert.equal(await count(), before);

  const { id } = await srv.instance('localfs', { root: 'cfg-patch' });
  const patch = await srv.api(`/instances/${id}`, { method: 'PATCH', json: { configuration: { 'event.poller.refresh_interval': 'x' } } });
  assert.equal(patch.status, 400);
  assert.match(((await patch.json()) as any).message, /event\.poller\.refresh_interval/);
  const put = await srv.api(`/instances/${id}`, {
    method: 'PUT',
    json: { name: 'put', configuration: { root: 'cfg-patch', 'event.notification.enabled': 'true' } },
  });
  assert.equal(put.status, 400);
  const now: any = await (await srv.api(`/instances/${id}`)).json();
  assert.equal(now.eventsEnabled, false);
  assert.equal(now.configuration['event.poller.refresh_interval'], null, 'still unset (a documented key reads null when unset)');

  const ok = await srv.api(`/instances/${id}`, {
    method: 'PATCH',
    json: { configuration: { 'event.notification.enabled': 'true', 'event.notification.callback.url': CALLBACK, 'event.poller.refresh_interval': '1.5' } },
  });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as any).eventsEnabled, true);
});

test('the interval is in minutes with decimals, never below FERRY_POLLER_MIN_INTERVAL', () => {
  const base = { 'event.notification.enabled': 'true', 'event.notification.callback.url': CALLBACK };
  assert.equal(parseChangeSettings({ ...base, 'event.poller.refresh_interval': '1.5' }, 5000).intervalMs, 90_000);
  assert.equal(parseChangeSettings({ ...base, 'event.poller.refresh_interval': '0.01' }, 5000).intervalMs, 5000);
  assert.equal(parseChangeSettings(base, 5000).intervalMs, 15 * 60_000);
  assert.deepEqual(parseChangeSettings(base, 5000).watch, { path: '/', recursive: true });
});
