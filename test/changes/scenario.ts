/**
 * The change-events scenario, run on every element (localfs, amazons3, sftp) through a small
 * harness: a real Ferry server watching an instance's `/inbox`, a second Ferry server (the
 * "writer", no events) changing the same storage through the hub API — also while the first
 * is stopped — and a real webhook receiver.
 *
 * What it proves: the baseline announces nothing; create, modify, delete, rename (DELETED +
 * CREATED) and a new folder are announced with the right types, paths and hub ids; nothing
 * outside the watched folder is; 25 new files come as 10 + 10 + 5; every webhook verifies with
 * standardwebhooks and with the Open Connectors recipe; each notification is an event reading
 * NOTIFIED; a change made while Ferry was stopped is announced after the restart, and nothing
 * old is announced again.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { FAST_ASYNC, startReceiver, startTestServer, type Receiver, type ReceivedHook, type TestServer } from '../helpers/server.js';
import { expectStatus, hubClient, idOf, q, upload, type Hub } from '../hub/conformance.js';

export const SIGNING_KEY = 'change-events-signing-key';

export interface ChangeHarness {
  /** Why the backend is unavailable, or false. */
  skip: string | false;
  /** Starts the backend (before all tests). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A fresh, empty storage configuration for the element (e.g. a new bucket). */
  storage(): Promise<Record<string, string>>;
  /** Extra server settings for the watching server and the writer (e.g. FERRY_LOCALFS_BASE). */
  env?(watcher: TestServer | null): Record<string, string>;
}

/** Settings that make polls come every second. */
export const FAST_POLLS: Record<string, string> = { ...FAST_ASYNC, FERRY_POLLER_MIN_INTERVAL: '1' };

export interface ChangeEventOut {
  objectType: string;
  objectId: string;
  eventType: string;
  elementKey: string;
  path: string;
  date: string;
}

/** Reads the change events of hooks after index `from` until `count` arrived. */
export async function eventsFrom(rx: Receiver, from: number, count: number, timeoutMs = 20_000): Promise<{ hooks: ReceivedHook[]; events: ChangeEventOut[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hooks = rx.hooks.slice(from);
    const events = hooks.flatMap((h) => h.body?.message?.events ?? []);
    if (events.length >= count) return { hooks, events };
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} change events (got ${JSON.stringify(events)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Both signature schemes of a hook verify with the signing key. */
export function assertSigned(hook: ReceivedHook, key = SIGNING_KEY): void {
  const expected = 'sha256=' + crypto.createHmac('sha256', key).update(hook.raw).digest('base64');
  assert.equal(hook.headers['elements-webhook-signature'], expected, 'Open Connectors signature');
  assert.ok(hook.headers['elements-webhook-id'], 'Elements-Webhook-Id');
  const wh = new Webhook(Buffer.from(key).toString('base64'));
  wh.verify(hook.raw, {
    'webhook-id': String(hook.headers['webhook-id']),
    'webhook-timestamp': String(hook.headers['webhook-timestamp']),
    'webhook-signature': String(hook.headers['webhook-signature']),
  });
}

/** The configuration that watches `/inbox` every second, sending to `rx`. */
export function watching(storage: Record<string, string>, rx: Receiver): Record<string, unknown> {
  return {
    ...storage,
    'event.notification.enabled': 'true',
    'event.notification.callback.url': rx.url,
    'event.notification.signature.key': SIGNING_KEY,
    'event.vendor.type': 'polling',
    'event.poller.refresh_interval': '0.01',
    'event.poller.configuration': { path: '/inbox', recursive: true },
  };
}

/**
 * Makes changes in /inbox until one is announced: from then on the baseline is recorded, so
 * every later change is announced. Returns the number of hooks received so far.
 */
export async function settle(writer: Hub, rx: Receiver): Promise<number> {
  for (let i = 0; i < 20; i++) {
    await upload(writer, `/inbox/probe-${i}.txt`, `probe ${i}`);
    try {
      await rx.waitFor(1, 3000);
      // Let the poll that announced the probe finish (its other notifications, if any).
      await new Promise((r) => setTimeout(r, 1500));
      return rx.hooks.length;
    } catch {
      // the probe fell into the baseline: try again
    }
  }
  throw new Error('no change was ever announced');
}

export function runChangeScenario(elementKey: string, harness: ChangeHarness): void {
  describe(`change events: ${elementKey}`, { skip: harness.skip }, () => {
    let watcher: TestServer;
    let writerServer: TestServer;
    let rx: Receiver;
    let storage: Record<string, string>;
    let instanceId: number;
    let writer: Hub;

    before(async () => {
      await harness.start();
      rx = await startReceiver();
      watcher = await startTestServer({ ...FAST_POLLS, ...(harness.env?.(null) ?? {}) });
      writerServer = await startTestServer({ ...FAST_POLLS, ...(harness.env?.(watcher) ?? {}) });
      storage = await harness.storage();
      const w = await writerServer.instance(elementKey, storage, 'writer');
      writer = hubClient(writerServer, w);
      // Objects that exist before events are enabled: the baseline, never announced.
      await upload(writer, '/inbox/old.txt', 'old');
      await upload(writer, '/inbox/deep/older.txt', 'older');
      await upload(writer, '/elsewhere/outside.txt', 'outside');
      instanceId = (await watcher.instance(elementKey, watching(storage, rx), 'watched')).id;
    });
    after(async () => {
      await writerServer?.close();
      await watcher?.close();
      if (watcher) fs.rmSync(watcher.dataDir, { recursive: true, force: true });
      await rx?.close();
      await harness.stop();
    });

    test('baseline silent; create, modify, rename, delete, folder announced with types and ids; 25 files = 10+10+5; signed; events NOTIFIED', async () => {
      let seen = await settle(writer, rx);
      const announced = () => rx.hooks.flatMap((h) => h.body.message.events.map((e: any) => e.path));
      assert.ok(!announced().some((p: string) => p === '/inbox/old.txt' || p === '/inbox/deep/older.txt'), 'baseline objects announced');

      await upload(writer, '/inbox/a.txt', 'first version');
      let got = await eventsFrom(rx, seen, 1);
      assert.deepEqual(got.events.map((e) => [e.eventType, e.objectType, e.path, e.objectId, e.elementKey]), [
        ['CREATED', 'file', '/inbox/a.txt', idOf('/inbox/a.txt'), elementKey],
      ]);
      assert.ok(!Number.isNaN(Date.parse(got.events[0].date)));
      const message = got.hooks[0].body.message;
      assert.equal(message.instanceId, instanceId);
      assert.equal(message.elementKey, elementKey);
      assert.equal(typeof message.eventId, 'number');
      assert.equal(typeof message.raw, 'object');
      seen = rx.hooks.length;

      await upload(writer, '/inbox/a.txt', 'second, longer version', '&overwrite=true');
      got = await eventsFrom(rx, seen, 1);
      assert.deepEqual(got.events.map((e) => [e.eventType, e.path]), [['UPDATED', '/inbox/a.txt']]);
      seen = rx.hooks.length;

      await expectStatus(await writer.call(`/files/metadata${q('/inbox/a.txt')}`, { method: 'PATCH', json: { path: '/inbox/b.txt' } }), 200);
      got = await eventsFrom(rx, seen, 2);
      assert.deepEqual(
        got.events.map((e) => [e.eventType, e.path, e.objectId]).sort(),
        [
          ['CREATED', '/inbox/b.txt', idOf('/inbox/b.txt')],
          ['DELETED', '/inbox/a.txt', idOf('/inbox/a.txt')],
        ],
      );
      seen = rx.hooks.length;

      await expectStatus(await writer.call(`/files${q('/inbox/b.txt')}`, { method: 'DELETE' }), 200);
      got = await eventsFrom(rx, seen, 1);
      assert.deepEqual(got.events.map((e) => [e.eventType, e.objectType, e.path]), [['DELETED', 'file', '/inbox/b.txt']]);
      seen = rx.hooks.length;

      await expectStatus(await writer.call('/folders', { method: 'POST', json: { path: '/inbox/sub' } }), 200);
      got = await eventsFrom(rx, seen, 1);
      assert.deepEqual(got.events.map((e) => [e.eventType, e.objectType, e.path]), [['CREATED', 'folder', '/inbox/sub']]);
      seen = rx.hooks.length;

      await expectStatus(await writer.call('/folders', { method: 'POST', json: { path: '/inbox/batch' } }), 200);
      await eventsFrom(rx, seen, 1);
      seen = rx.hooks.length;

      // 25 files in one poll: the watched instance is disabled while they are written.
      await expectStatus(await watcher.api(`/instances/${instanceId}/enabled`, { method: 'DELETE' }), 200);
      for (let i = 0; i < 25; i++) await upload(writer, `/inbox/batch/f${String(i).padStart(2, '0')}.txt`, `file ${i}`);
      await upload(writer, '/elsewhere/not-watched.txt', 'outside the watch');
      await expectStatus(await watcher.api(`/instances/${instanceId}/enabled`, { method: 'PUT' }), 200);
      got = await eventsFrom(rx, seen, 25);
      await new Promise((r) => setTimeout(r, 1500));
      const batch = rx.hooks.slice(seen);
      const sizes = batch.map((h) => h.body.message.events.length).sort((a, b) => a - b);
      assert.deepEqual(sizes, [5, 10, 10], '25 new files come in 3 notifications: 10 + 10 + 5');
      const created = batch.flatMap((h) => h.body.message.events).filter((e: any) => e.eventType === 'CREATED');
      assert.equal(created.filter((e: any) => e.objectType === 'file').length, 25);
      assert.ok(!announced().some((p: string) => p.startsWith('/elsewhere')), 'nothing outside the watch is announced');
      assert.equal(new Set(batch.map((h) => h.body.message.eventId)).size, 3, 'eventId unique per notification');

      for (const hook of rx.hooks) assertSigned(hook);

      // Every notification is an event that reads NOTIFIED once delivered.
      const deadline = Date.now() + 10_000;
      let events: any[] = [];
      for (;;) {
        events = await expectStatus(await watcher.api(`/instances/${instanceId}/events?pageSize=200`), 200);
        if (events.length >= rx.hooks.length && events.every((e) => e.status === 'NOTIFIED')) break;
        if (Date.now() > deadline) assert.fail(`events not all NOTIFIED: ${JSON.stringify(events.map((e) => e.status))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(events.length, rx.hooks.length);
      const ids = new Set(rx.hooks.map((h) => h.body.message.eventId));
      for (const e of events) {
        assert.ok(ids.has(e.id), `event ${e.id} was delivered`);
        assert.equal(e.providerData.method, 'POLL');
        assert.equal(e.notifiedData.message.eventId, e.id);
        assert.equal(e.deliveries.at(-1).statusCode, 200);
      }
      const deliveries = await expectStatus(await watcher.api(`/notifications/subscriptions/deliveries?where=${encodeURIComponent(`config.url='${rx.url}'`)}`), 200);
      assert.ok(deliveries.length >= rx.hooks.length && deliveries.every((d: any) => d.status === 'delivered'));
    });

    test('a change made while Ferry is stopped is announced after the restart; nothing old again', async () => {
      const seen = rx.hooks.length;
      const dataDir = watcher.dataDir;
      const env = { ...FAST_POLLS, ...(harness.env?.(null) ?? {}) };
      await watcher.ferry.close();
      await upload(writer, '/inbox/while-down.txt', 'written while Ferry was stopped');
      watcher = await startTestServer(env, dataDir);
      const got = await eventsFrom(rx, seen, 1);
      assert.deepEqual(got.events.map((e) => [e.eventType, e.path]), [['CREATED', '/inbox/while-down.txt']]);
      // One more change flushes whatever the restart might have announced besides.
      await upload(writer, '/inbox/after-restart.txt', 'after');
      const more = await eventsFrom(rx, seen, 2);
      assert.deepEqual(more.events.map((e) => e.path), ['/inbox/while-down.txt', '/inbox/after-restart.txt']);
    });
  });
}
