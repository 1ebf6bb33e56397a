/**
 * Secrets never leak (issue 7): a full run — instances with a signature key and a backend secret,
 * hub calls, async requests delivered as signed webhooks, failing requests, 401s — with the
 * server logging at debug level into memory. Then every secret used (user secret, organization
 * secret, instance token, signature key, S3 secret key) is searched for in the captured log, in
 * every response (headers and body; the token only where it is handed out, at creation), in the
 * events and deliveries API output, in every webhook's headers and body, and in the raw bytes of
 * the database files (encryption at rest). Signatures derived from the key are expected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createLogger, startFerry } from '../../src/server.js';
import { verifyNotification } from '../../src/async/signing.js';
import { FAST_ASYNC, multipartFile, startReceiver } from '../helpers/server.js';

const USER_SECRET = 'leak-check-user-secret-6b1f0c2e9a7d4e58b3c1';
const ORG_SECRET = 'leak-check-org-secret-0d9e8f7a6b5c4d3e2f1a';
const SIGNATURE_KEY = 'leak-check-signature-key-5e4d3c2b1a09f8e7';
const S3_SECRET = 'leak-check-s3-secret-key-AbCdEfGhIjKlMnOp';

test('no secret appears in logs, responses, events, webhooks or the raw database', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-secrets-'));
  const logLines: string[] = [];
  const memory = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    FERRY_DATA_DIR: dataDir,
    FERRY_USER_SECRET: USER_SECRET,
    FERRY_ORG_SECRET: ORG_SECRET,
    FERRY_LOG_LEVEL: 'debug',
    FERRY_RATE_LIMIT: '0',
    FERRY_AUTH_FAILURE_LIMIT: '0',
    ...FAST_ASYNC,
  });
  const printed: string[] = [];
  const ferry = await startFerry(config, { logger: createLogger(config, memory), print: (l) => printed.push(l) });
  const rx = await startReceiver();
  const seen: { what: string; text: string }[] = [];
  let token = '';
  try {
    const address = ferry.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    config.port = port;
    const base = `http://127.0.0.1:${port}/elements/api-v2`;
    const platform = `User ${USER_SECRET}, Organization ${ORG_SECRET}`;

    /** A request whose answer (status line, headers, body) is recorded for the search. */
    async function call(what: string, p: string, init: RequestInit & { json?: unknown; auth?: string } = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', init.auth ?? platform);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      const res = await fetch(base + p, { ...init, headers, body });
      const text = await res.text();
      seen.push({ what: `${what} (${res.status})`, text: `${JSON.stringify([...res.headers])}\n${text}` });
      return { status: res.status, text, json: () => JSON.parse(text) };
    }

    // Instances: one localfs with a signature key and a configured callback; one S3 that fails.
    const created = await fetch(`${base}/instances`, {
      method: 'POST',
      headers: { authorization: platform, 'content-type': 'application/json' },
      body: JSON.stringify({
        element: { key: 'localfs' },
        name: 'leak-check',
        configuration: { root: 'leak', 'event.notification.signature.key': SIGNATURE_KEY, 'event.notification.callback.url': rx.url },
      }),
    });
    assert.equal(created.status, 200);
    const instance: any = await created.json();
    token = instance.token;
    assert.ok(token.length >= 32);
    assert.equal(instance.configuration['event.notification.signature.key'], '********');
    const { token: _handedOut, ...rest } = instance;
    seen.push({ what: 'create response without its token', text: JSON.stringify(rest) });
    const hub = `User ${USER_SECRET}, Element ${token}`;

    const s3 = await call('failing S3 instance', '/instances', {
      method: 'POST',
      json: {
        element: { key: 'amazons3' },
        name: 's3-leak',
        configuration: {
          'filemanagement.provider.access_key': 'AKIALEAKCHECK',
          'filemanagement.provider.secret_key': S3_SECRET,
          'filemanagement.provider.bucket_name': 'b',
          'filemanagement.provider.region_name': 'us-east-1',
          'filemanagement.provider.endpoint': 'http://127.0.0.1:1',
        },
      },
    });
    assert.ok(s3.status >= 400 && s3.status < 600, s3.text);

    await call('get instance', `/instances/${instance.id}`);
    await call('list instances', '/instances');
    await call('instance configuration', `/instances/${instance.id}/configuration`);
    await call('patch signature key', `/instances/${instance.id}/configuration/event.notification.signature.key`, {
      method: 'PATCH',
      json: { propertyValue: SIGNATURE_KEY },
    });

    // Hub calls.
    const upload = await call('upload', '/hubs/documents/files?path=/a/secret.txt', { method: 'POST', auth: hub, body: multipartFile('hello') });
    assert.equal(upload.status, 200, upload.text);
    await call('contents', '/hubs/documents/folders/contents?path=/a', { auth: hub });
    await call('metadata', '/hubs/documents/files/metadata?path=/a/secret.txt', { auth: hub });
    await call('download', '/hubs/documents/files?path=/a/secret.txt', { auth: hub });
    await call('links', '/hubs/documents/files/links?path=/a/secret.txt', { auth: hub });
    await call('copy', '/hubs/documents/files/copy?path=/a/secret.txt', { method: 'POST', auth: hub, json: { path: '/b/copy.txt' } });

    // Failures and 401s — among them headers that carry a real secret next to a wrong one.
    await call('missing file', '/hubs/documents/files?path=/missing.txt', { auth: hub });
    await call('bad JSON', '/hubs/documents/folders', { method: 'POST', auth: hub, headers: { 'content-type': 'application/json' }, body: '{' });
    await call('wrong org secret', '/instances', { auth: `User ${USER_SECRET}, Organization wrong-${ORG_SECRET.slice(0, 8)}` });
    await call('wrong user secret', '/instances', { auth: `User nope, Organization ${ORG_SECRET}` });
    await call('hub with platform credentials', '/hubs/documents/ping', { auth: platform });
    await call('element token on a platform route', '/instances', { auth: `User ${USER_SECRET}, Element ${token}` });
    await call('malformed header with the secret', '/instances', { auth: `${USER_SECRET} ${ORG_SECRET}` });

    // Async: a success through the header callback, a failure through the configured one.
    const asyncHeaders = { 'elements-async-request': 'true', cookie: `session=${USER_SECRET}` };
    const ok = await call('async ok', '/hubs/documents/folders', {
      method: 'POST',
      auth: hub,
      headers: { ...asyncHeaders, 'elements-async-callback-url': rx.url },
      json: { path: '/async-made' },
    });
    assert.equal(ok.status, 200, ok.text);
    const failed = await call('async failing', '/hubs/documents/files?path=/missing.txt', { auth: hub, headers: asyncHeaders });
    assert.equal(failed.status, 200, failed.text);
    const hooks = await rx.waitFor(2, 15_000);
    assert.deepEqual(hooks.map((h) => h.body.eventStatus).sort(), ['completed', 'failed']);
    for (const h of hooks) {
      assert.deepEqual(verifyNotification(h.raw, h.headers as Record<string, string>, SIGNATURE_KEY), { legacy: true, standard: true });
      seen.push({ what: `webhook ${h.body.eventId}`, text: `${JSON.stringify(h.headers)}\n${h.raw}` });
    }

    await call('events', '/instances/events');
    await call('instance events', `/instances/${instance.id}/events`);
    await call('one event', `/instances/events/${ok.json().eventId}`);
    await call('failed event', `/instances/events/${failed.json().eventId}`);
    await call('deliveries', '/notifications/subscriptions/deliveries');
    await call('settings', '/accounts/settings');
  } finally {
    await ferry.close();
    await rx.close();
  }

  const secrets: Record<string, string> = {
    'user secret': USER_SECRET,
    'organization secret': ORG_SECRET,
    'signature key': SIGNATURE_KEY,
    'S3 secret key': S3_SECRET,
    'instance token': token,
  };
  const log = logLines.join('');
  assert.match(log, /request refused/, 'the log holds the refusals that must not leak a secret');
  assert.ok(logLines.length >= 5, `the debug log captured ${logLines.length} lines`);
  const places = [{ what: 'server log', text: log }, ...seen];
  const database = fs
    .readdirSync(dataDir)
    .filter((f) => f.startsWith('ferry.db'))
    .map((f) => ({ what: `raw ${f}`, text: fs.readFileSync(path.join(dataDir, f)).toString('latin1') }));
  assert.ok(database.length > 0);
  const leaks: string[] = [];
  for (const place of [...places, ...database]) {
    for (const [name, value] of Object.entries(secrets)) {
      if (place.text.includes(value)) leaks.push(`${name} in ${place.what}`);
    }
  }
  console.log(`# searched ${places.length + database.length} places (log: ${logLines.length} lines) for ${Object.keys(secrets).length} secrets`);
  assert.deepEqual(leaks, []);
  fs.rmSync(dataDir, { recursive: true, force: true });
});
