/**
 * Webhook delivery policy end to end (DESIGN §1.5): retries on the configured schedule (shrunk to
 * milliseconds by FAST_ASYNC, real clocks), 410 stopping at once and deactivating the
 * subscription, redirects not followed, a receiver down past every retry ending `queued` and
 * redelivered by `PUT /notifications/subscriptions/deliveries`, and the account's `queue` policy.
 * Receivers are real HTTP servers on loopback; each test uses its own receiver so the
 * subscriptions (one per callback URL) do not interfere.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { FAST_ASYNC, startReceiver, startTestServer, type ReceivedHook, type Receiver, type TestServer } from '../helpers/server.js';

const POLICY = 'notification.webhook.failure.policy';
/** FAST_ASYNC's FERRY_RETRY_SCHEDULE has 4 retries: 5 attempts in all. */
const ATTEMPTS = 5;

let srv: TestServer;
let inst: { id: number; token: string; auth: string };
const receivers: Receiver[] = [];

before(async () => {
  srv = await startTestServer(FAST_ASYNC);
  inst = await srv.instance('localfs', { root: 'delivery', 'event.notification.signature.key': 'delivery-key' });
});

after(async () => {
  await srv?.close();
  for (const r of receivers) await r.close();
});

/** A receiver that records every request it gets (accepted or not) in `seen`. */
async function receiver(answer: (index: number, hook: ReceivedHook) => { status: number; headers?: Record<string, string> }, port = 0) {
  const r = await startReceiver(port);
  receivers.push(r);
  const seen: ReceivedHook[] = [];
  r.respond = (hook) => {
    seen.push(hook);
    return answer(seen.length - 1, hook);
  };
  return { r, seen };
}

async function json(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Accepts an async ping whose notification goes to `callbackUrl`; returns its eventId. */
async function asyncPing(callbackUrl: string): Promise<number> {
  const res = await srv.api('/hubs/documents/ping', {
    headers: { authorization: inst.auth, 'elements-async-request': 'true', 'elements-async-callback-url': callbackUrl },
  });
  const body = await json(res);
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.eventStatus, 'dispatched');
  return body.eventId;
}

async function event(eventId: number): Promise<any> {
  const res = await srv.api(`/instances/events/${eventId}`);
  assert.equal(res.status, 200);
  return json(res);
}

async function eventUntil(eventId: number, done: (e: any) => boolean, timeoutMs = 10_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = await event(eventId);
    if (done(e)) return e;
    if (Date.now() > deadline) assert.fail(`event ${eventId} did not reach the expected state: ${JSON.stringify(e)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function deliveries(where: string): Promise<any[]> {
  const res = await srv.api(`/notifications/subscriptions/deliveries?where=${encodeURIComponent(where)}`);
  const body = await json(res);
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

async function redeliver(where: string): Promise<number> {
  const res = await srv.api(`/notifications/subscriptions/deliveries?where=${encodeURIComponent(where)}`, { method: 'PUT' });
  const body = await json(res);
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.redelivered;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a receiver answering 500 then 200 gets the notification retried and delivered', async () => {
  const { r, seen } = await receiver((i) => ({ status: i === 0 ? 500 : 200 }));
  const eventId = await asyncPing(r.url);
  const [hook] = await r.waitFor(1);
  assert.equal(hook.body.eventId, eventId);
  const e = await eventUntil(eventId, (x) => x.status === 'NOTIFIED');
  assert.equal(e.deliveries.length, 2, JSON.stringify(e.deliveries));
  assert.equal(e.deliveries[0].statusCode, 500);
  assert.match(e.deliveries[0].error, /500/);
  assert.equal(e.deliveries[1].statusCode, 200);
  assert.equal(e.deliveries[1].error, null);
  assert.equal(e.notification.status, 'delivered');
  assert.equal(e.notification.attempts, 2);
  // Both attempts carry the same webhook id (receivers dedupe on it).
  assert.equal(seen.length, 2);
  assert.equal(seen[0].headers['elements-webhook-id'], seen[1].headers['elements-webhook-id']);
  assert.equal(seen[0].raw, seen[1].raw);
  const listed = await deliveries(`status='delivered' and config.url='${r.url}'`);
  assert.deepEqual(
    listed.map((d) => [d.eventId, d.status, d.channel, d.config.url]),
    [[eventId, 'delivered', 'webhook', r.url]],
  );
});

test('a redirect is not followed: it counts as a failure and is retried', async () => {
  const target = await receiver(() => ({ status: 200 }));
  const { r, seen } = await receiver((i) => (i === 0 ? { status: 302, headers: { location: target.r.url } } : { status: 200 }));
  const eventId = await asyncPing(r.url);
  const e = await eventUntil(eventId, (x) => x.status === 'NOTIFIED');
  assert.deepEqual(e.deliveries.map((d: any) => d.statusCode), [302, 200]);
  assert.equal(seen.length, 2);
  assert.equal(target.seen.length, 0, 'the redirect target was never called');
});

/** A receiver that never answers the first `hang` requests (until closed), then answers 200. */
async function hangingReceiver(hang: number): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    if (requests > hang) req.on('end', () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/slow`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('a receiver that does not answer in time is retried, and does not hold up other receivers', async () => {
  const slow = await hangingReceiver(6);
  const healthy = await receiver(() => ({ status: 200 }));
  try {
    // More hanging attempts than FERRY_ORIGIN_CONCURRENCY (4) allows at once to that origin.
    const stuck = await Promise.all(Array.from({ length: 6 }, () => asyncPing(slow.url)));
    const t0 = Date.now();
    while (slow.requests() < 4 && Date.now() - t0 < 5000) await sleep(10);
    assert.ok(slow.requests() >= 4, 'the slow receiver holds its origin slots');
    const sent = Date.now();
    const other = await asyncPing(healthy.r.url);
    await healthy.r.waitFor(1, 1500, (h) => h.body?.eventId === other);
    assert.ok(Date.now() - sent < 1500, 'a healthy receiver is served while another one hangs');
    // FAST_ASYNC's FERRY_DELIVERY_TIMEOUT is 2 s: each hanging attempt times out and is retried.
    // Which notification meets which of the six hanging answers depends on claim order, so
    // count over all of them: six attempts timed out (no status, ~2 s each), every event ends
    // delivered with a 200 after its retry.
    const timedOut: any[] = [];
    for (const eventId of stuck) {
      const e = await eventUntil(eventId, (x) => x.status === 'NOTIFIED', 15_000);
      timedOut.push(...e.deliveries.filter((d: any) => d.statusCode === null));
      assert.equal(e.deliveries.at(-1).statusCode, 200);
    }
    assert.equal(timedOut.length, 6, 'each of the six hanging answers cost one timed-out attempt');
    for (const d of timedOut) {
      assert.match(d.error, /timed out/);
      assert.ok(d.durationMs >= 1900, `attempt lasted ${d.durationMs} ms`);
    }
  } finally {
    await slow.close();
  }
});

test('410 Gone stops at once: queued, subscription deactivated, later notifications queue until redelivered', async () => {
  let gone = true;
  const { r, seen } = await receiver(() => ({ status: gone ? 410 : 200 }));
  const first = await asyncPing(r.url);
  const e = await eventUntil(first, (x) => x.notification?.status === 'queued');
  assert.equal(e.status, 'CONSUMED');
  assert.deepEqual(e.deliveries.map((d: any) => d.statusCode), [410]);
  await sleep(400); // well past the whole retry schedule
  assert.equal(seen.length, 1, 'no retry after 410');

  // The subscription is inactive: the next notification to that URL queues without an attempt.
  const second = await asyncPing(r.url);
  const e2 = await eventUntil(second, (x) => x.notification !== null);
  assert.equal(e2.notification.status, 'queued');
  await sleep(200);
  assert.equal(seen.length, 1);
  assert.deepEqual((await event(second)).deliveries, []);
  const queued = await deliveries(`status='queued' and config.url='${r.url}'`);
  assert.deepEqual(queued.map((d) => d.eventId).sort((a, b) => a - b), [first, second]);

  // Reactivated and redelivered once the receiver wants them again.
  gone = false;
  assert.equal(await redeliver(`status='queued' and config.url='${r.url}'`), 2);
  await r.waitFor(2);
  await eventUntil(first, (x) => x.status === 'NOTIFIED');
  await eventUntil(second, (x) => x.status === 'NOTIFIED');
  assert.deepEqual(await deliveries(`status='queued' and config.url='${r.url}'`), []);
});

test('a receiver down past every retry: queued, listed, and redelivered by PUT once it is back', async () => {
  // Find a free port, then leave nothing listening on it.
  const probe = await startReceiver();
  const port = probe.port;
  const url = probe.url;
  await probe.close();

  const eventId = await asyncPing(url);
  const e = await eventUntil(eventId, (x) => x.notification?.status === 'queued');
  assert.equal(e.deliveries.length, ATTEMPTS, JSON.stringify(e.deliveries));
  for (const d of e.deliveries) {
    assert.equal(d.statusCode, null);
    assert.match(d.error, /refused/);
  }
  // The retries follow the schedule (offsets 50, 100, 150, 200 ms from the first failure).
  const times = e.deliveries.map((d: any) => Date.parse(d.date));
  assert.ok(times[ATTEMPTS - 1] - times[0] >= 190, `retries spread over the schedule: ${times.map((t: number) => t - times[0])}`);

  const listed = await deliveries("status='queued'");
  const mine = listed.find((d) => d.eventId === eventId);
  assert.ok(mine, JSON.stringify(listed));
  assert.equal(mine.config.url, url);
  assert.equal(mine.status, 'queued');
  assert.ok(mine.notificationId > 0 && mine.subscriptionId > 0);
  assert.ok(!Number.isNaN(Date.parse(mine.createdDate)) && !Number.isNaN(Date.parse(mine.updatedDate)));

  // Retries ran out, so the subscription is deactivated: a new notification queues at once.
  const later = await asyncPing(url);
  assert.equal((await eventUntil(later, (x) => x.notification !== null)).notification.status, 'queued');

  const back = await receiver(() => ({ status: 200 }), port);
  assert.ok((await redeliver("status='queued'")) >= 2);
  const hooks = await back.r.waitFor(2);
  assert.deepEqual(hooks.map((h) => h.body.eventId).sort((a, b) => a - b), [eventId, later]);
  const done = await eventUntil(eventId, (x) => x.status === 'NOTIFIED');
  assert.equal(done.deliveries.length, ATTEMPTS + 1);
  assert.equal(done.deliveries[ATTEMPTS].statusCode, 200);
  assert.equal((await deliveries("status='queued'")).some((d) => d.eventId === eventId || d.eventId === later), false);
});

test('the deliveries where clause is validated', async () => {
  for (const bad of ["status='lost'", "color='red'", "channel='email'", 'status=queued']) {
    const res = await srv.api(`/notifications/subscriptions/deliveries?where=${encodeURIComponent(bad)}`);
    assert.equal(res.status, 400, bad);
    await res.arrayBuffer();
  }
  assert.ok(Array.isArray(await deliveries("status in ('queued','retry') and channel='webhook'")));
});

test('account policy queue: a failed delivery is queued at once, without retries', async () => {
  const bad = await srv.api('/accounts/settings', { method: 'PATCH', json: { [POLICY]: 'sometimes' } });
  assert.equal(bad.status, 400);
  await bad.arrayBuffer();
  const set = await srv.api('/accounts/settings', { method: 'PATCH', json: { [POLICY]: 'queue' } });
  assert.equal(set.status, 200);
  assert.equal((await json(set))[POLICY], 'queue');
  assert.equal((await json(await srv.api('/accounts/settings')))[POLICY], 'queue');
  try {
    let failing = true;
    const { r, seen } = await receiver(() => ({ status: failing ? 500 : 200 }));
    const eventId = await asyncPing(r.url);
    const e = await eventUntil(eventId, (x) => x.notification?.status === 'queued');
    assert.deepEqual(e.deliveries.map((d: any) => d.statusCode), [500]);
    await sleep(400);
    assert.equal(seen.length, 1, 'no retries under the queue policy');

    // The queue policy does not deactivate the subscription: a healthy delivery still goes out.
    failing = false;
    const next = await asyncPing(r.url);
    await eventUntil(next, (x) => x.status === 'NOTIFIED');
    assert.equal(await redeliver(`status='queued' and config.url='${r.url}'`), 1);
    await eventUntil(eventId, (x) => x.status === 'NOTIFIED');
  } finally {
    const reset = await srv.api('/accounts/settings', { method: 'PATCH', json: { [POLICY]: 'retry' } });
    assert.equal((await json(reset))[POLICY], 'retry');
  }
});
