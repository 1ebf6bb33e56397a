/**
 * Signing: the headers Ferry sends verify with the original platform's documented Node recipe
 * and with the `standardwebhooks` library; tampering and stale timestamps are caught.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { signNotification, verifyNotification } from '../../src/async/signing.js';

const key = 'my-signature-key-ü'; // non-ASCII on purpose: the key is used as UTF-8 bytes
const body = JSON.stringify({ eventId: 1028, instanceId: 30, eventStatus: 'completed', statusCode: 200, response: { events: [] } });
const now = () => Math.floor(Date.now() / 1000);

test('always sends content type and both id headers, no signature without a key', () => {
  for (const k of [undefined, '']) {
    const h = signNotification(body, k, 'wh_1', 1700000000);
    assert.deepEqual(h, {
      'content-type': 'application/json',
      'elements-webhook-id': 'wh_1',
      'webhook-id': 'wh_1',
      'webhook-timestamp': '1700000000',
    });
  }
});

test('Elements-Webhook-Signature matches the documented Node recipe', () => {
  const h = signNotification(body, key, 'wh_2', now());
  const expected = 'sha256=' + crypto.createHmac('sha256', key).update(body).digest('base64');
  assert.equal(h['elements-webhook-signature'], expected);
  assert.match(h['elements-webhook-signature'], /^sha256=[A-Za-z0-9+/]+=*$/);
});

test('webhook-signature verifies with the standardwebhooks library given base64(key)', () => {
  const h = signNotification(body, key, 'msg_abc', now());
  const wh = new Webhook(Buffer.from(key, 'utf8').toString('base64'));
  assert.deepEqual(wh.verify(body, h), JSON.parse(body));
  assert.match(h['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/);
});

test('verifyNotification accepts what signNotification produced', () => {
  const h = signNotification(body, key, 'wh_3', now());
  assert.deepEqual(verifyNotification(body, h, key), { legacy: true, standard: true });
  // Header names are matched case-insensitively, as a receiver may see them.
  const upper = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toUpperCase(), v]));
  assert.deepEqual(verifyNotification(body, upper, key), { legacy: true, standard: true });
});

test('a tampered body fails both schemes (and the library)', () => {
  const h = signNotification(body, key, 'wh_4', now());
  const tampered = body.replace('completed', 'failed');
  assert.deepEqual(verifyNotification(tampered, h, key), { legacy: false, standard: false });
  const legacy = 'sha256=' + crypto.createHmac('sha256', key).update(tampered).digest('base64');
  assert.notEqual(h['elements-webhook-signature'], legacy);
  const wh = new Webhook(Buffer.from(key).toString('base64'));
  assert.throws(() => wh.verify(tampered, h), /No matching signature/);
});

test('a wrong key fails both schemes', () => {
  const h = signNotification(body, key, 'wh_5', now());
  assert.deepEqual(verifyNotification(body, h, 'other-key'), { legacy: false, standard: false });
});

test('an old timestamp fails the standard scheme but not the body-only legacy one', () => {
  const old = now() - 3600;
  const h = signNotification(body, key, 'wh_6', old);
  assert.deepEqual(verifyNotification(body, h, key), { legacy: true, standard: false });
  assert.deepEqual(verifyNotification(body, h, key, { toleranceSeconds: 7200 }), { legacy: true, standard: true });
  const wh = new Webhook(Buffer.from(key).toString('base64'));
  assert.throws(() => wh.verify(body, h), /too old/);
  // The timestamp is part of what is signed: changing it breaks the signature.
  const moved = { ...h, 'webhook-timestamp': String(now()) };
  assert.equal(verifyNotification(body, moved, key).standard, false);
});

test('absent headers are null, several v1 signatures pass if one matches', () => {
  assert.deepEqual(verifyNotification(body, { 'content-type': 'application/json' }, key), { legacy: null, standard: null });
  const h = signNotification(body, key, 'wh_7', now());
  const rotated = { ...h, 'webhook-signature': `v1,AAAA v1a,whatever ${h['webhook-signature']}` };
  assert.equal(verifyNotification(body, rotated, key).standard, true);
  const noId = { ...h };
  delete (noId as Record<string, string>)['webhook-id'];
  assert.equal(verifyNotification(body, noId, key).standard, false);
});

test('the timestamp must be an integer number of seconds', () => {
  assert.throws(() => signNotification(body, key, 'x', 1.5), RangeError);
  assert.throws(() => signNotification(body, key, 'x', -1), RangeError);
});

// ---- key rotation (issue 24) -------------------------------------------------------------

test('rotation: several keys give one v1 signature each, new first; the legacy header carries the new key only', () => {
  const [next, previous] = ['new-key', 'old-key'];
  const ts = now();
  const h = signNotification(body, [next, previous], 'wh_rot', ts);
  const parts = h['webhook-signature'].split(' ');
  assert.equal(parts.length, 2);
  assert.equal(parts[0], signNotification(body, next, 'wh_rot', ts)['webhook-signature']);
  assert.equal(parts[1], signNotification(body, previous, 'wh_rot', ts)['webhook-signature']);
  assert.equal(h['elements-webhook-signature'], 'sha256=' + crypto.createHmac('sha256', next).update(body).digest('base64'));
  for (const k of [next, previous]) {
    assert.deepEqual(new Webhook(Buffer.from(k).toString('base64')).verify(body, h), JSON.parse(body));
  }
  assert.throws(() => new Webhook(Buffer.from('third-key').toString('base64')).verify(body, h), /No matching signature/);
  // Duplicates and empty keys are dropped.
  assert.equal(signNotification(body, [next, next, ''], 'wh_rot', ts)['webhook-signature'].split(' ').length, 1);
});

test('rotation: the verify helper accepts a list of keys and passes when any one matches', () => {
  const h = signNotification(body, 'new-key', 'wh_list', now());
  assert.deepEqual(verifyNotification(body, h, ['old-key', 'new-key']), { legacy: true, standard: true });
  assert.deepEqual(verifyNotification(body, h, ['old-key']), { legacy: false, standard: false });
  const both = signNotification(body, ['new-key', 'old-key'], 'wh_list', now());
  assert.deepEqual(verifyNotification(body, both, 'old-key'), { legacy: false, standard: true });
});
