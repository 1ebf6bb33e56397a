/**
 * Probes and metrics (issue 14) on a real node over real HTTP: /healthz, /readyz and its named
 * checks (a store whose schema is behind), GET /metrics — family names and labels, the route
 * pattern label, the runner thread's counters in the node's scrape, store gauges read at scrape
 * time, FERRY_METRICS=off, FERRY_METRICS_TOKEN — and `promtool check metrics` on a scrape.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FAST_ASYNC, startReceiver, startTestServer, testBackend, type Receiver, type TestServer } from '../helpers/server.js';

const PROMTOOL = '/usr/bin/promtool';

/** Parses the exposition text into `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of the samples of `name` whose labels include every `label="value"` in `where`. */
function sum(text: string, name: string, where: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, value] of samples(text)) {
    const brace = key.indexOf('{');
    const metric = brace < 0 ? key : key.slice(0, brace);
    if (metric !== name) continue;
    if (Object.entries(where).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
  }
  return total;
}

async function scrape(srv: TestServer, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(srv.base.replace('/elements/api-v2', '/metrics'), { headers });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return text;
}

function root(srv: TestServer, p: string, init?: RequestInit): Promise<Response> {
  return fetch(srv.base.replace('/elements/api-v2', p), init);
}

const servers: TestServer[] = [];
const receivers: Receiver[] = [];
after(async () => {
  for (const s of servers) await s.close();
  for (const r of receivers) await r.close();
});

async function server(env: Record<string, string> = {}): Promise<TestServer> {
  const srv = await startTestServer({ ...FAST_ASYNC, ...env });
  servers.push(srv);
  return srv;
}

async function receiver(): Promise<Receiver> {
  const rx = await startReceiver();
  receivers.push(rx);
  return rx;
}

/** Sends `n` async pings of instance `auth` to `url`; returns their event ids. */
async function asyncPings(srv: TestServer, auth: string, url: string, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await srv.api('/hubs/documents/ping', {
      headers: { authorization: auth, 'elements-async-request': 'true', 'elements-async-callback-url': url },
    });
    const body: any = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    ids.push(body.eventId);
  }
  return ids;
}

describe('probes', () => {
  test('GET /healthz answers {"status":"ok"} without credentials', async () => {
    const srv = await server();
    const res = await root(srv, '/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('GET /readyz names every check; an api-only node has no runner check', async () => {
    const srv = await server();
    const res = await root(srv, '/readyz');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ready', checks: { store: 'ok', migrations: 'ok', runner: 'ok', drain: 'ok' } });
    const api = await server({ FERRY_ROLE: 'api' });
    const body: any = await (await root(api, '/readyz')).json();
    assert.deepEqual(body, { status: 'ready', checks: { store: 'ok', migrations: 'ok', drain: 'ok' } });
  });

  test('a worker node (no API) answers probes and scrapes on its port, and nothing else', async () => {
    const srv = await server({ FERRY_ROLE: 'worker' });
    const url = srv.ferry.operationsUrl;
    assert.ok(url, 'the worker listens');
    assert.deepEqual(await (await fetch(`${url}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { store: 'ok', migrations: 'ok', runner: 'ok', drain: 'ok' } });
    const scraped = await fetch(`${url}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /# TYPE ferry_events_finished_total counter/);
    const api = await fetch(`${url}/elements/api-v2/instances`);
    assert.equal(api.status, 404);
    assert.match(((await api.json()) as any).message, /a worker node serves only \/healthz, \/readyz and \/metrics/);
  });

  test('GET /readyz is 503 naming the migrations check when the store schema is behind', { skip: testBackend() !== 'sqlite' && 'SQLite file check' }, async () => {
    const srv = await server();
    const db = new Database(path.join(srv.dataDir, 'ferry.db'));
    const version = db.pragma('user_version', { simple: true }) as number;
    db.pragma(`user_version = ${version - 1}`);
    try {
      const res = await root(srv, '/readyz');
      const body: any = await res.json();
      assert.equal(res.status, 503);
      assert.equal(body.status, 'unready');
      assert.equal(body.checks.store, 'ok');
      assert.equal(body.checks.migrations, `the store's schema is at version ${version - 1}, this Ferry needs ${version}`);
      assert.equal(body.checks.drain, 'ok');
    } finally {
      db.pragma(`user_version = ${version}`);
      db.close();
    }
  });
});

describe('GET /metrics', () => {
  for (const thread of ['on', 'off']) {
    test(`counts accepts, finished jobs, attempts and end-to-end latency (runner thread ${thread})`, async () => {
      const srv = await server({ FERRY_RUNNER_THREAD: thread });
      const rx = await receiver();
      const inst = await srv.instance('localfs', { root: `metrics-${thread}` });
      const before = await scrape(srv);
      await asyncPings(srv, inst.auth, rx.url, 5);
      await rx.waitFor(5);
      // The delivery is recorded just after the receiver answered.
      let text = '';
      for (let i = 0; i < 100; i++) {
        text = await scrape(srv);
        if (sum(text, 'ferry_webhook_attempts_total', { outcome: 'delivered' }) - sum(before, 'ferry_webhook_attempts_total', { outcome: 'delivered' }) >= 5) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // In-process test servers share this thread's registry: compare with the scrape before.
      const delta = (name: string, where: Record<string, string> = {}) => sum(text, name, where) - sum(before, name, where);
      assert.equal(delta('ferry_events_accepted_total', { element: 'localfs' }), 5);
      assert.equal(delta('ferry_events_finished_total', { element: 'localfs', outcome: 'completed' }), 5);
      assert.equal(delta('ferry_webhook_attempts_total', { outcome: 'delivered' }), 5);
      assert.equal(delta('ferry_event_end_to_end_seconds_count'), 5);
      assert.equal(delta('ferry_webhook_attempt_duration_seconds_count'), 5);
      assert.ok(delta('ferry_store_commit_batch_size_count') >= 3, 'accept, completion and delivery commits are counted');
      assert.ok(delta('ferry_store_commit_duration_seconds_count') >= 3);
      assert.equal(delta('ferry_http_requests_total', { method: 'GET', route: '/elements/api-v2/hubs/documents/ping', status: '200' }), 5);
      assert.ok(sum(text, 'process_cpu_seconds_total') > 0);
      assert.ok(text.includes('# TYPE nodejs_heap_size_used_bytes gauge'));
    });
  }

  test('the route label is the route pattern, never the concrete URL', async () => {
    const srv = await server();
    const inst = await srv.instance('localfs', { root: 'routes' });
    const id = encodeURIComponent(encodeURIComponent('/secret-name.txt'));
    const res = await srv.api(`/hubs/documents/files/${id}/metadata`, { headers: { authorization: inst.auth } });
    assert.equal(res.status, 404);
    await root(srv, '/no/such/thing-xyz');
    const text = await scrape(srv);
    assert.ok(text.includes('route="/elements/api-v2/hubs/documents/files/:id/metadata",status="404"'), 'pattern label');
    assert.ok(text.includes('route="unmatched",status="404"'), 'an unmatched URL is counted as route "unmatched"');
    assert.ok(!text.includes('secret-name') && !text.includes('thing-xyz'), 'no concrete URL in any label');
  });

  test('store gauges are read at scrape time: pending events and their age, queued notifications', async () => {
    // An api-only node runs no jobs: what it accepts stays pending.
    const srv = await server({ FERRY_ROLE: 'api' });
    const rx = await receiver();
    const inst = await srv.instance('localfs', { root: 'gauges' });
    await asyncPings(srv, inst.auth, rx.url, 3);
    await new Promise((r) => setTimeout(r, 1100));
    const text = await scrape(srv);
    assert.equal(sum(text, 'ferry_events', { state: 'pending' }), 3);
    assert.equal(sum(text, 'ferry_events', { state: 'running' }), 0);
    assert.equal(sum(text, 'ferry_events', { state: 'retry_wait' }), 0);
    assert.ok(sum(text, 'ferry_events_oldest_pending_age_seconds') >= 1, 'the oldest pending event is over a second old');
    assert.match(text, /# HELP ferry_events .*cluster-wide/);

    // The queue failure policy holds a refused webhook as queued.
    const worker = await server({ FERRY_RUNNER_THREAD: 'off' });
    const rx2 = await receiver();
    rx2.respond = () => ({ status: 500 });
    const inst2 = await worker.instance('localfs', { root: 'queued' });
    const failedBefore = sum(await scrape(worker), 'ferry_webhook_attempts_total', { outcome: 'failed' });
    const set = await worker.api('/accounts/settings', { method: 'PATCH', json: { 'notification.webhook.failure.policy': 'queue' } });
    assert.equal(set.status, 200);
    await asyncPings(worker, inst2.auth, rx2.url, 1);
    let queued = 0;
    for (let i = 0; i < 100 && queued < 1; i++) {
      const t = await scrape(worker);
      queued = sum(t, 'ferry_notifications_queued');
      if (queued < 1) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(queued, 1);
    const t = await scrape(worker);
    assert.equal(sum(t, 'ferry_webhook_attempts_total', { outcome: 'failed' }) - failedBefore, 1);
  });

  test('FERRY_METRICS=off: no /metrics route', async () => {
    const srv = await server({ FERRY_METRICS: 'off' });
    const res = await root(srv, '/metrics');
    assert.equal(res.status, 404);
    assert.equal((await root(srv, '/healthz')).status, 200);
  });

  test('FERRY_METRICS_TOKEN: the scrape needs the bearer token (401 with the error body otherwise)', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const srv = await server({ FERRY_METRICS_TOKEN: token });
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: token }] as Record<string, string>[]) {
      const res = await root(srv, '/metrics', { headers });
      const body: any = await res.json();
      assert.equal(res.status, 401);
      assert.match(body.message, /Authorization: Bearer <token>.*FERRY_METRICS_TOKEN/);
      assert.equal(body.requestId, res.headers.get('elements-request-id'));
      assert.ok(!JSON.stringify(body).includes(token));
    }
    await scrape(srv, { authorization: `Bearer ${token}` });
  });

  test('promtool check metrics: a scrape has no error and no lint warning', { skip: !fs.existsSync(PROMTOOL) && `${PROMTOOL} is missing (apt-get install prometheus; .ci/run does)` }, async () => {
    const srv = await server();
    const rx = await receiver();
    const inst = await srv.instance('localfs', { root: 'promtool' });
    await asyncPings(srv, inst.auth, rx.url, 2);
    await rx.waitFor(2);
    await srv.api('/hubs/documents/ping', { headers: { authorization: inst.auth } });
    const text = await scrape(srv);
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    assert.equal((check.stdout + check.stderr).trim(), '');
  });
});
