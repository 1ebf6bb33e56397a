/**
 * What one slow receiver costs the others (issue 19's isolation). A receiver that holds every
 * attempt slot of its origin (FERRY_ORIGIN_CONCURRENCY) must not slow the sender down for other
 * origins: the notifications their completing jobs create are still handed straight to the
 * sender, not left in the store for a claim (which costs a store round trip per batch, and on
 * PostgreSQL a query on the shared database). The held origin's own notifications queue in the
 * store behind it, and all of them arrive once it answers. Real receivers on loopback, the node's
 * runner and sender on its own thread (so the test can see the store's claims).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { FAST_ASYNC, startReceiver, startTestServer } from '../helpers/server.js';

/** A receiver that keeps every request open until `release()`, then answers 200 to all. */
async function holdingReceiver(): Promise<{ url: string; open: () => number; answered: () => number; release: () => void; close: () => Promise<void> }> {
  const held: http.ServerResponse[] = [];
  let released = false;
  let answered = 0;
  const answer = (res: http.ServerResponse) => {
    answered++;
    res.writeHead(200).end();
  };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => (released ? answer(res) : held.push(res)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/held`,
    open: () => held.length,
    answered: () => answered,
    release: () => {
      released = true;
      for (const res of held.splice(0)) answer(res);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('while one receiver holds its origin full, other receivers\' notifications are handed straight to the sender; the held ones all arrive once it answers', async () => {
  // A delivery timeout longer than the test: the held attempts stay in flight, none is retried.
  const srv = await startTestServer({ ...FAST_ASYNC, FERRY_DELIVERY_TIMEOUT: '30000', FERRY_RUNNER_THREAD: 'off' });
  const slow = await holdingReceiver();
  const healthy = await startReceiver();
  try {
    const inst = await srv.instance('localfs', { root: 'isolation' });
    const ping = async (callbackUrl: string): Promise<number> => {
      const res = await srv.api('/hubs/documents/ping', {
        headers: { authorization: inst.auth, 'elements-async-request': 'true', 'elements-async-callback-url': callbackUrl },
      });
      const body = (await res.json()) as { eventId: number };
      assert.equal(res.status, 200, JSON.stringify(body));
      return body.eventId;
    };
    // Which events' notifications the sender had to claim from the store.
    const claimed = new Set<number>();
    const store = srv.ferry.store;
    const claim = store.claimNotifications.bind(store);
    store.claimNotifications = async (...args) => {
      const due = await claim(...args);
      for (const n of due) claimed.add(n.eventId);
      return due;
    };

    // Ten for the slow receiver: four attempts fill its origin (FAST_ASYNC's FERRY_ORIGIN_CONCURRENCY), six wait.
    const held: number[] = [];
    for (let i = 0; i < 10; i++) held.push(await ping(slow.url));
    await until(() => slow.open() === 4, 'the slow receiver holds its origin\'s 4 slots');

    const sent: number[] = [];
    for (let i = 0; i < 20; i++) {
      sent.push(await ping(healthy.url));
      await healthy.waitFor(i + 1, 10_000);
    }
    const viaStore = sent.filter((eventId) => claimed.has(eventId));
    assert.deepEqual(viaStore, [], `${viaStore.length} of 20 healthy notifications went through a store claim instead of a handoff`);
    assert.equal(slow.open(), 4, 'the slow origin still has 4 attempts in flight, no more');

    slow.release();
    await until(() => slow.answered() === 10, 'the slow receiver got all 10 of its webhooks');
    for (const eventId of held) {
      let event: { status?: string } = {};
      const notified = async () => {
        event = (await (await srv.api(`/instances/events/${eventId}`)).json()) as { status: string };
        return event.status === 'NOTIFIED';
      };
      const deadline = Date.now() + 10_000;
      while (!(await notified()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      assert.equal(event.status, 'NOTIFIED', `event ${eventId}: ${JSON.stringify(event)}`);
    }
  } finally {
    slow.release();
    await slow.close();
    await healthy.close();
    await srv.close();
  }
});
