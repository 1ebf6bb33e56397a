/**
 * `ferry listen`: a real receiver on loopback; signed notifications print as valid, tampered
 * ones as INVALID, unsigned ones as not signed; it answers 200 {"received":true}.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { listen, type Listener } from '../../src/listen.js';
import { signNotification } from '../../src/async/signing.js';

const key = 'listen-key';
let lines: string[] = [];
let receiver: Listener;

before(async () => {
  receiver = await listen({ port: 0, signatureKey: key, out: (line) => lines.push(line) });
});
after(async () => {
  await receiver.close();
});

const notification = { eventId: 1028, instanceId: 30, notificationId: 1084, eventStatus: 'completed', statusCode: 200, response: { events: [] } };

async function post(body: string, headers: Record<string, string>, path = '/hooks') {
  lines = [];
  const res = await request(`http://127.0.0.1:${receiver.port}${path}`, { method: 'POST', body, headers });
  return { status: res.statusCode, json: await res.body.json() };
}

test('a signed notification is printed with both signatures valid', async () => {
  const body = JSON.stringify(notification);
  const res = await post(body, signNotification(body, key, 'wh_listen_1', Math.floor(Date.now() / 1000)));
  assert.deepEqual(res, { status: 200, json: { received: true } });
  const text = lines.join('\n');
  assert.match(lines[0], /^── \d{4}-\d\d-\d\dT.*Z {2}Elements-Webhook-Id: wh_listen_1$/);
  assert.match(text, /eventId: 1028 {2}eventStatus: "completed" {2}statusCode: 200/);
  assert.match(text, /signature sha256=… \(Elements-Webhook-Signature\): ✓ valid/);
  assert.match(text, /signature v1,… \(webhook-signature\): ✓ valid/);
  assert.ok(text.includes(JSON.stringify(notification, null, 2)), 'pretty JSON body printed');
  assert.doesNotMatch(text, /INVALID/);
});

test('a tampered body is printed as INVALID for both schemes', async () => {
  const body = JSON.stringify(notification);
  const headers = signNotification(body, key, 'wh_listen_2', Math.floor(Date.now() / 1000));
  const res = await post(body.replace('completed', 'failed'), headers, '/any/path');
  assert.equal(res.status, 200);
  const text = lines.join('\n');
  assert.match(text, /signature sha256=… \(Elements-Webhook-Signature\): ✗ INVALID/);
  assert.match(text, /signature v1,… \(webhook-signature\): ✗ INVALID/);
  assert.match(text, /eventStatus: "failed"/);
  assert.doesNotMatch(text, /✓ valid/);
});

test('an old timestamp: the standard signature is INVALID and the line says why', async () => {
  const body = JSON.stringify(notification);
  await post(body, signNotification(body, key, 'wh_listen_old', Math.floor(Date.now() / 1000) - 3600));
  const text = lines.join('\n');
  assert.match(text, /signature sha256=… \(Elements-Webhook-Signature\): ✓ valid/);
  assert.match(text, /signature v1,… \(webhook-signature\): ✗ INVALID \(webhook-timestamp is more than 300 s away/);
});

test('an unsigned notification says not signed', async () => {
  const body = JSON.stringify(notification);
  await post(body, signNotification(body, undefined, 'wh_listen_3', Math.floor(Date.now() / 1000)));
  const text = lines.join('\n');
  assert.match(text, /signature sha256=… \(Elements-Webhook-Signature\): not signed/);
  assert.match(text, /signature v1,… \(webhook-signature\): not signed/);
});

test('a non-JSON body is shown raw; GET is refused with 405', async () => {
  const res = await post('plain text', { 'content-type': 'text/plain' });
  assert.equal(res.status, 200);
  assert.ok(lines.some((l) => l === 'body (not JSON, 10 bytes): plain text'));
  const get = await request(`http://127.0.0.1:${receiver.port}/`);
  assert.equal(get.statusCode, 405);
  assert.equal(get.headers.allow, 'POST');
  await get.body.dump();
});

test('without a key signatures are reported present but unchecked', async () => {
  const out: string[] = [];
  const other = await listen({ port: 0, out: (l) => out.push(l) });
  try {
    const body = JSON.stringify(notification);
    const res = await request(`http://127.0.0.1:${other.port}/`, {
      method: 'POST',
      body,
      headers: signNotification(body, key, 'wh_listen_4', Math.floor(Date.now() / 1000)),
    });
    await res.body.dump();
    assert.ok(out.some((l) => /sha256=… .*present, not checked \(no --signature-key given\)/.test(l)));
  } finally {
    await other.close();
  }
});

test('key rotation: `ferry listen --signature-key OLD --signature-key NEW` verifies webhooks signed by either (issue 24)', async () => {
  const { spawn } = await import('node:child_process');
  const cli = new URL('../../src/cli.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [cli, 'listen', '--port', '0', '--signature-key', 'old-key', '--signature-key', 'new-key'], {
    env: { ...process.env, FERRY_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ferry listen did not start: ${out}`)), 10_000);
      child.stdout!.on('data', () => {
        const m = /Listening for webhooks on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    const body = JSON.stringify(notification);
    const now = Math.floor(Date.now() / 1000);
    for (const [id, keys] of [['wh_rot_new', 'new-key'], ['wh_rot_old', 'old-key'], ['wh_rot_both', ['new-key', 'old-key']], ['wh_rot_other', 'other-key']] as const) {
      const res = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body, headers: signNotification(body, keys, id, now) });
      await res.body.dump();
    }
    const printed = () => out.split('── ').slice(1);
    for (let i = 0; i < 100 && printed().length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    const blocks = printed();
    assert.equal(blocks.length, 4, out);
    for (const block of blocks.slice(0, 3)) {
      assert.match(block, /webhook-signature\): ✓ valid/);
      assert.match(block, /Elements-Webhook-Signature\): ✓ valid/);
    }
    assert.match(blocks[3], /wh_rot_other[\s\S]*webhook-signature\): ✗ INVALID/);
  } finally {
    child.kill();
  }
});
