/**
 * verifyWebhook (@ferry/client/verify, issue 20) against signatures made by Ferry's own signer:
 * it accepts either scheme and returns the parsed notification, and refuses a tampered body, a
 * wrong key, a stale timestamp and an unsigned request, each with the reason named.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { signNotification } from '../../src/async/signing.js';
import { checkWebhookSignatures, verifyWebhook, WebhookVerificationError, type WebhookFailure } from '../../packages/client/src/verify.js';

const KEY = 'verify-test-key-Ünïcode';
const NOW = 1_800_000_000;
const BODY = JSON.stringify({ eventId: 7, instanceId: 3, notificationId: 9, eventStatus: 'completed', statusCode: 200, response: { path: '/b' } });

function signed(body = BODY, keys: string | string[] = KEY, at = NOW): Record<string, string> {
  return signNotification(body, keys, 'msg_1', at);
}

async function refusal(promise: Promise<unknown>): Promise<WebhookFailure> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof WebhookVerificationError, `expected WebhookVerificationError, got ${e}`);
    assert.ok(e.message.length > 10);
    return e.reason;
  }
  assert.fail('verifyWebhook accepted it');
}

describe('verifyWebhook', () => {
  it('accepts both schemes and returns the typed notification', async () => {
    const n = await verifyWebhook(BODY, signed(), KEY, { nowSeconds: NOW });
    assert.equal(n.eventId, 7);
    assert.equal(n.eventStatus, 'completed');
    assert.deepEqual(await checkWebhookSignatures(BODY, signed(), KEY, { nowSeconds: NOW }), { elements: 'valid', standard: 'valid' });
  });

  it('agrees with the standardwebhooks library', async () => {
    const at = new Date();
    const signature = new Webhook(Buffer.from(KEY, 'utf8').toString('base64')).sign('msg_2', at, BODY);
    const headers = { 'webhook-id': 'msg_2', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature };
    assert.equal((await verifyWebhook(BODY, headers, KEY)).eventId, 7);
  });

  it('accepts fetch Headers, raw bytes, and the Elements scheme alone', async () => {
    const headers = signed();
    const onlyElements = { 'Elements-Webhook-Signature': headers['elements-webhook-signature'] };
    assert.equal((await verifyWebhook(new TextEncoder().encode(BODY), new Headers(headers), KEY, { nowSeconds: NOW })).notificationId, 9);
    assert.equal((await verifyWebhook(BODY, onlyElements, KEY)).eventId, 7);
  });

  it('accepts any of several keys while keys rotate, on either side', async () => {
    // The sender signs with its new and old key; the receiver still knows only the old one.
    const headers = signed(BODY, ['new-key', KEY]);
    assert.equal((await verifyWebhook(BODY, headers, KEY, { nowSeconds: NOW })).eventId, 7);
    // The receiver holds both while the sender already signs with the new one only.
    assert.equal((await verifyWebhook(BODY, signed(BODY, 'new-key'), [KEY, 'new-key'], { nowSeconds: NOW })).eventId, 7);
  });

  it('refuses a tampered body', async () => {
    const tampered = BODY.replace('"completed"', '"failed"');
    assert.equal(await refusal(verifyWebhook(tampered, signed(), KEY, { nowSeconds: NOW })), 'invalid_signature');
    const onlyElements = { 'elements-webhook-signature': signed()['elements-webhook-signature'] };
    assert.equal(await refusal(verifyWebhook(tampered, onlyElements, KEY)), 'invalid_signature');
  });

  it('refuses a wrong key', async () => {
    assert.equal(await refusal(verifyWebhook(BODY, signed(), 'not-the-key', { nowSeconds: NOW })), 'invalid_signature');
    assert.equal(await refusal(verifyWebhook(BODY, signed(), [], { nowSeconds: NOW })), 'no_key');
  });

  it('refuses a stale timestamp even though the Elements signature is right', async () => {
    const old = signed(BODY, KEY, NOW - 301);
    assert.equal(await refusal(verifyWebhook(BODY, old, KEY, { nowSeconds: NOW })), 'stale_timestamp');
    assert.equal(await refusal(verifyWebhook(BODY, signed(BODY, KEY, NOW + 400), KEY, { nowSeconds: NOW })), 'stale_timestamp');
    // A wider tolerance accepts it.
    assert.equal((await verifyWebhook(BODY, old, KEY, { nowSeconds: NOW, toleranceSeconds: 600 })).eventId, 7);
  });

  it('refuses an unsigned request, a standard signature without its id, and a non-JSON body', async () => {
    assert.equal(await refusal(verifyWebhook(BODY, { 'content-type': 'application/json' }, KEY)), 'missing_signature');
    const { 'webhook-id': _id, ...noId } = signed();
    assert.equal(await refusal(verifyWebhook(BODY, noId, KEY, { nowSeconds: NOW })), 'missing_headers');
    assert.equal(await refusal(verifyWebhook('"text"', signed('"text"'), KEY, { nowSeconds: NOW })), 'invalid_body');
  });
});
