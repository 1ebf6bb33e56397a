/**
 * Issue 19, lever 1: the unsealed instance configuration is cached (instances/service.ts), and a
 * change must still take effect as before —
 * - on the node that made it, at once: the next accept uses a changed callback URL (PATCH,
 *   PUT, the configuration entry route), the next webhook is signed with a changed signature
 *   key, a disabled instance refuses the next request and an enabled one accepts again, a
 *   deleted one is unknown;
 * - on another node of a PostgreSQL cluster within the documented bound: the instance row the
 *   accept holds is at most AUTH_CACHE_MS (1 s) old, signature keys at most the sender's
 *   KEY_CACHE_MS (5 s). The test waits up to 15 s (a loaded machine) and asserts the outcome,
 *   not the time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import {
  PLATFORM_AUTH,
  USER_SECRET,
  startReceiver,
  startTestServer,
  FAST_ASYNC,
  type Receiver,
  type ReceivedHook,
  type TestServer,
} from '../helpers/server.js';
import { clusterSkipReason, startCluster, type Cluster } from '../helpers/cluster.js';

const CALLBACK = 'event.notification.callback.url';
const KEY = 'event.notification.signature.key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const verifies = (key: string, hook: ReceivedHook): boolean => {
  try {
    new Webhook(Buffer.from(key, 'utf8').toString('base64')).verify(hook.raw, hook.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
};

/** An async ping through `base` with no callback header: the instance's configured URL decides. */
async function ping(base: string, auth: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/hubs/documents/ping`, { headers: { authorization: auth, 'elements-async-request': 'true' } });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** The callback URL stored with an accepted event. */
async function callbackOf(base: string, eventId: number): Promise<string> {
  const res = await fetch(`${base}/instances/events/${eventId}`, { headers: { authorization: PLATFORM_AUTH } });
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.callbackUrl;
}

async function send(base: string, path: string, method: string, json?: unknown): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: PLATFORM_AUTH, ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${path}: ${text}`);
  return text ? JSON.parse(text) : null;
}

describe('instance configuration changes on the node that makes them', () => {
  let srv: TestServer;
  let a: Receiver;
  let b: Receiver;
  before(async () => {
    srv = await startTestServer({ ...FAST_ASYNC, FERRY_KEY_ROTATION_OVERLAP: '0' });
    a = await startReceiver();
    b = await startReceiver();
  });
  after(async () => {
    await srv?.close();
    await a?.close();
    await b?.close();
  });

  it('callback URL, signature key, disabling and deleting take effect on the next request', async () => {
    const key1 = `k1-${crypto.randomBytes(8).toString('hex')}`;
    const key2 = `k2-${crypto.randomBytes(8).toString('hex')}`;
    const i = await srv.instance('localfs', { root: 'changes', [CALLBACK]: a.url, [KEY]: key1 });

    const first = await ping(srv.base, i.auth);
    assert.equal(first.status, 200);
    assert.equal(await callbackOf(srv.base, first.body.eventId), a.url);
    const [hook1] = await a.waitFor(1, 10_000, (h) => h.body?.eventId === first.body.eventId);
    assert.ok(verifies(key1, hook1!));

    // PATCH: new URL and key, used by the very next accept and webhook.
    await send(srv.base, `/instances/${i.id}`, 'PATCH', { configuration: { [CALLBACK]: b.url, [KEY]: key2 } });
    const second = await ping(srv.base, i.auth);
    assert.equal(second.status, 200);
    assert.equal(await callbackOf(srv.base, second.body.eventId), b.url);
    const [hook2] = await b.waitFor(1, 10_000, (h) => h.body?.eventId === second.body.eventId);
    assert.ok(verifies(key2, hook2!), 'signed with the new key');
    assert.ok(!verifies(key1, hook2!), 'no longer signed with the old key (no overlap configured)');

    // The configuration entry route.
    await send(srv.base, `/instances/${i.id}/configuration/${CALLBACK}`, 'PATCH', { propertyValue: a.url });
    const third = await ping(srv.base, i.auth);
    assert.equal(await callbackOf(srv.base, third.body.eventId), a.url);

    // PUT replaces the configuration.
    await send(srv.base, `/instances/${i.id}`, 'PUT', { name: 'replaced', configuration: { root: 'changes', [CALLBACK]: b.url } });
    const fourth = await ping(srv.base, i.auth);
    assert.equal(await callbackOf(srv.base, fourth.body.eventId), b.url);

    // Disable, enable, delete.
    await send(srv.base, `/instances/${i.id}/enabled`, 'DELETE');
    const refused = await ping(srv.base, i.auth);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.match(refused.body.message, /disabled/);
    await send(srv.base, `/instances/${i.id}/enabled`, 'PUT');
    assert.equal((await ping(srv.base, i.auth)).status, 200);
    await send(srv.base, `/instances/${i.id}`, 'DELETE');
    assert.equal((await ping(srv.base, i.auth)).status, 401);
  });
});

const clusterSkip = (await clusterSkipReason()) ?? undefined;

describe('instance configuration changes on another node (PostgreSQL cluster)', { skip: clusterSkip }, () => {
  let cluster: Cluster;
  let a: Receiver;
  let b: Receiver;
  before(async () => {
    cluster = await startCluster(['all', 'all']);
    a = await startReceiver();
    b = await startReceiver();
  });
  after(async () => {
    await cluster?.close();
    await a?.close();
    await b?.close();
  });

  /** Pings through `base` until `done` holds for the answer (at most 15 s); returns how long it took. */
  async function until(base: string, auth: string, done: (r: { status: number; body: any }) => Promise<boolean>): Promise<number> {
    const started = Date.now();
    for (;;) {
      const r = await ping(base, auth);
      if (await done(r)) return Date.now() - started;
      assert.ok(Date.now() - started < 15_000, `the change did not reach the other node in 15 s (last answer ${r.status})`);
      await sleep(100);
    }
  }

  it('a callback URL changed, the instance disabled and enabled on node 1 take effect on node 2', async () => {
    const [one, two] = cluster.nodes.map((n) => n.base!);
    const res = await fetch(`${one}/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ element: { key: 'localfs' }, name: 'changes', configuration: { root: 'changes', [CALLBACK]: a.url } }),
    });
    const created: any = await res.json();
    assert.equal(res.status, 200, JSON.stringify(created));
    const auth = `User ${USER_SECRET}, Element ${created.token}`;

    // Node 2 caches the configuration (and the instance) by accepting with it.
    const warm = await ping(two!, auth);
    assert.equal(warm.status, 200);
    assert.equal(await callbackOf(two!, warm.body.eventId), a.url);

    await send(one!, `/instances/${created.id}`, 'PATCH', { configuration: { [CALLBACK]: b.url } });
    const urlMs = await until(two!, auth, async (r) => r.status === 200 && (await callbackOf(two!, r.body.eventId)) === b.url);

    await send(one!, `/instances/${created.id}/enabled`, 'DELETE');
    const disableMs = await until(two!, auth, async (r) => r.status === 403);
    await send(one!, `/instances/${created.id}/enabled`, 'PUT');
    const enableMs = await until(two!, auth, async (r) => r.status === 200);
    // Informational (no timing assertion): the documented bound is AUTH_CACHE_MS = 1 s.
    console.log(`# other node saw: callback URL after ${urlMs} ms, disable after ${disableMs} ms, enable after ${enableMs} ms`);
  });
});
