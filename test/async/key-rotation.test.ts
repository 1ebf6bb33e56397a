/**
 * Issue 24, part 2: rotating `event.notification.signature.key` without breaking receivers,
 * checked with the `standardwebhooks` library as a receiver would:
 * - after PATCH with a new key, webhooks carry both `v1,` signatures (new first) for
 *   FERRY_KEY_ROTATION_OVERLAP (2 s here), `Elements-Webhook-Signature` the new key's; a receiver
 *   with the old key verifies during the overlap and not after it, one with the new key verifies
 *   throughout;
 * - a retry signs with the keys current when it is sent (rotation through the configuration
 *   route while the notification waits for its retry);
 * - previous keys are encrypted at rest and never shown.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { startReceiver, startTestServer, testBackend, FAST_ASYNC, type Receiver, type ReceivedHook, type TestServer } from '../helpers/server.js';

const KEY_SETTING = 'event.notification.signature.key';

const receiverFor = (key: string) => new Webhook(Buffer.from(key, 'utf8').toString('base64'));
const verifies = (key: string, hook: ReceivedHook): boolean => {
  try {
    receiverFor(key).verify(hook.raw, hook.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
};
const legacy = (key: string, raw: string) => 'sha256=' + crypto.createHmac('sha256', key).update(raw).digest('base64');
const newKey = (name: string) => `${name}-${crypto.randomBytes(12).toString('hex')}`;

/** An async ping on the instance; resolves with the webhook of its event. */
async function notify(srv: TestServer, auth: string, rx: Receiver): Promise<ReceivedHook> {
  const res = await srv.api('/hubs/documents/ping', { headers: { authorization: auth, 'elements-async-request': 'true' } });
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  const [hook] = await rx.waitFor(1, 10_000, (h) => h.body?.eventId === body.eventId);
  return hook;
}

/** Every byte of the SQLite store (database and WAL). */
function storedBytes(dir: string): Buffer {
  return Buffer.concat(
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('ferry.db'))
      .map((f) => fs.readFileSync(path.join(dir, f))),
  );
}

describe('signature key rotation', () => {
  let srv: TestServer;
  let rx: Receiver;
  before(async () => {
    srv = await startTestServer({ ...FAST_ASYNC, FERRY_KEY_ROTATION_OVERLAP: '2' });
    rx = await startReceiver();
  });
  after(async () => {
    await srv?.close();
    await rx?.close();
  });

  it('old-key receivers verify during the overlap and not after; new-key receivers throughout', async () => {
    const oldKey = newKey('old');
    const nextKey = newKey('new');
    const i = await srv.instance('localfs', { root: 'rotation', [KEY_SETTING]: oldKey, 'event.notification.callback.url': rx.url });
    const auth = `${i.auth}`;

    const before = await notify(srv, auth, rx);
    assert.ok(verifies(oldKey, before));
    assert.equal(before.headers['webhook-signature']!.toString().split(' ').length, 1);

    const patched = await srv.api(`/instances/${i.id}`, { method: 'PATCH', json: { configuration: { [KEY_SETTING]: nextKey } } });
    assert.equal(patched.status, 200, await patched.text());
    const rotatedAt = Date.now();

    const during = await notify(srv, auth, rx);
    const signatures = during.headers['webhook-signature']!.toString().split(' ');
    assert.equal(signatures.length, 2, 'both keys sign during the overlap');
    assert.ok(verifies(nextKey, during), 'the new key verifies');
    assert.ok(verifies(oldKey, during), 'the old key still verifies during the overlap');
    assert.ok(receiverFor(nextKey).verify(during.raw, { ...(during.headers as Record<string, string>), 'webhook-signature': signatures[0] }), 'the new key signs first');
    assert.equal(during.headers['elements-webhook-signature'], legacy(nextKey, during.raw), 'Elements-Webhook-Signature carries the new key');

    // Neither key is shown or stored in the clear.
    const shown = await (await srv.api(`/instances/${i.id}`)).text();
    assert.doesNotMatch(shown, new RegExp(`${oldKey}|${nextKey}`));
    if (testBackend() === 'sqlite') {
      const bytes = storedBytes(srv.dataDir);
      assert.equal(bytes.includes(oldKey), false, 'the previous key is encrypted at rest');
      assert.equal(bytes.includes(nextKey), false, 'the new key is encrypted at rest');
    }

    await new Promise((r) => setTimeout(r, Math.max(0, rotatedAt + 2_000 + 300 - Date.now())));
    const afterOverlap = await notify(srv, auth, rx);
    assert.equal(afterOverlap.headers['webhook-signature']!.toString().split(' ').length, 1, 'only the new key after the overlap');
    assert.ok(verifies(nextKey, afterOverlap), 'the new key verifies after the overlap');
    assert.equal(verifies(oldKey, afterOverlap), false, 'the old key no longer verifies');
    assert.equal(afterOverlap.headers['elements-webhook-signature'], legacy(nextKey, afterOverlap.raw));
  });

  it('removing the key stops signing at once, old keys included', async () => {
    const key1 = newKey('one');
    const i = await srv.instance('localfs', { root: 'rotation-off', [KEY_SETTING]: key1, 'event.notification.callback.url': rx.url });
    const patched = await srv.api(`/instances/${i.id}`, { method: 'PATCH', json: { configuration: { [KEY_SETTING]: '' } } });
    assert.equal(patched.status, 200, await patched.text());
    const hook = await notify(srv, i.auth, rx);
    assert.equal(hook.headers['webhook-signature'], undefined);
    assert.equal(hook.headers['elements-webhook-signature'], undefined);
  });
});

describe('a retry signs with the keys current when it is sent', () => {
  let srv: TestServer;
  let rx: Receiver;
  before(async () => {
    srv = await startTestServer({ ...FAST_ASYNC, FERRY_RETRY_SCHEDULE: '1,2,3', FERRY_KEY_ROTATION_OVERLAP: '600' });
    rx = await startReceiver();
  });
  after(async () => {
    await srv?.close();
    await rx?.close();
  });

  it('rotated (configuration route) between the first attempt and its retry: the retry carries the new keys', async () => {
    const oldKey = newKey('old');
    const nextKey = newKey('new');
    const i = await srv.instance('localfs', { root: 'retry-rotation', [KEY_SETTING]: oldKey, 'event.notification.callback.url': rx.url });
    let first: ReceivedHook | undefined;
    let failedOnce!: () => void;
    const failed = new Promise<void>((resolve) => (failedOnce = resolve));
    rx.respond = (hook) => {
      if (!first) {
        first = hook;
        failedOnce();
        return { status: 503 };
      }
      return { status: 200 };
    };
    const res = await srv.api('/hubs/documents/ping', { headers: { authorization: i.auth, 'elements-async-request': 'true' } });
    const { eventId }: any = await res.json();
    await failed;
    assert.equal(first!.headers['elements-webhook-signature'], legacy(oldKey, first!.raw), 'the first attempt was signed with the old key');

    const patched = await srv.api(`/instances/${i.id}/configuration/${KEY_SETTING}`, { method: 'PATCH', json: { propertyValue: nextKey } });
    assert.equal(patched.status, 200, await patched.text());

    const [retry] = await rx.waitFor(1, 15_000, (h) => h.body?.eventId === eventId);
    assert.equal(retry.headers['webhook-id'], first!.headers['webhook-id'], 'the same delivery, retried');
    assert.equal(retry.headers['elements-webhook-signature'], legacy(nextKey, retry.raw), 'the retry carries the key current when sent');
    assert.equal(retry.headers['webhook-signature']!.toString().split(' ').length, 2);
    assert.ok(verifies(nextKey, retry));
    assert.ok(verifies(oldKey, retry), 'the old key is still inside its overlap');
  });
});
