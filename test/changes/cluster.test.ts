/**
 * Change events in cluster mode: two real `ferry serve` processes on one PostgreSQL schema
 * (test/helpers/cluster.ts) watch one localfs instance. Each change is announced in exactly one
 * notification (whichever node polls); after the node that holds the instance's lease is
 * killed (SIGKILL), the other takes the instance over and announces the next change, once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { clusterSkipReason, startCluster } from '../helpers/cluster.js';
import { PLATFORM_AUTH, startReceiver, type Receiver } from '../helpers/server.js';
import { SIGNING_KEY, assertSigned } from './scenario.js';

const skip = (await clusterSkipReason()) ?? undefined;
const ROOT = 'watched';

/** Change events received so far, deduplicated on Elements-Webhook-Id (at-least-once delivery). */
function changes(rx: Receiver): { eventId: number; eventType: string; path: string }[] {
  const seen = new Set<string>();
  const out: { eventId: number; eventType: string; path: string }[] = [];
  for (const h of rx.hooks) {
    const id = String(h.headers['elements-webhook-id']);
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of h.body.message.events) out.push({ eventId: h.body.message.eventId, eventType: e.eventType, path: e.path });
  }
  return out;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('two nodes: one notification per change; killing the lease holder hands the instance to the other', { skip, timeout: 120_000 }, async () => {
  const rx = await startReceiver();
  const cluster = await startCluster(['all', 'all'], { FERRY_POLLER_MIN_INTERVAL: '1', FERRY_POLLER_LEASE: '2000' });
  try {
    const folder = path.join(cluster.localfsBase, ROOT);
    fs.mkdirSync(path.join(folder, 'inbox'), { recursive: true });
    fs.writeFileSync(path.join(folder, 'inbox', 'old.txt'), 'baseline');
    const res = await fetch(`${cluster.nodes[0].base}/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({
        element: { key: 'localfs' },
        name: 'watched',
        configuration: {
          root: ROOT,
          'event.notification.enabled': true,
          'event.notification.callback.url': rx.url,
          'event.notification.signature.key': SIGNING_KEY,
          'event.poller.refresh_interval': 0.01,
        },
      }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const instanceId = (await res.json()).id;
    await until('the baseline', async () => (await cluster.query('SELECT baselined FROM change_schedules WHERE instance_id = $1', [instanceId]))[0]?.baselined === true);

    // Several changes, one poll or several: each announced exactly once, by whichever node.
    for (let i = 0; i < 5; i++) {
      fs.writeFileSync(path.join(folder, 'inbox', `n${i}.txt`), `file ${i}`);
      await until(`n${i}.txt announced`, () => changes(rx).some((c) => c.path === `/inbox/n${i}.txt`));
    }
    await new Promise((r) => setTimeout(r, 3000)); // time for any duplicate to show up
    const before = changes(rx);
    assert.deepEqual(before.map((c) => c.path).sort(), [0, 1, 2, 3, 4].map((i) => `/inbox/n${i}.txt`));
    assert.ok(before.every((c) => c.eventType === 'CREATED'));

    // Kill the node holding the lease; the other announces the next change.
    const [row] = await cluster.query('SELECT lease_owner FROM change_schedules WHERE instance_id = $1', [instanceId]);
    const holder = cluster.nodes.find((n) => String(row.lease_owner).startsWith(`poller-${n.child.pid}-`));
    assert.ok(holder, `the lease holder ${row.lease_owner} is one of the nodes`);
    const survivor = cluster.nodes.find((n) => n !== holder)!;
    await holder.kill();
    fs.writeFileSync(path.join(folder, 'inbox', 'after-kill.txt'), 'after the kill');
    fs.rmSync(path.join(folder, 'inbox', 'n0.txt'));
    await until('the changes after the kill', () => changes(rx).filter((c) => c.path === '/inbox/after-kill.txt' || c.path === '/inbox/n0.txt').length >= 2);
    await new Promise((r) => setTimeout(r, 3000));
    const after = changes(rx).slice(before.length);
    assert.deepEqual(after.map((c) => [c.eventType, c.path]).sort(), [
      ['CREATED', '/inbox/after-kill.txt'],
      ['DELETED', '/inbox/n0.txt'],
    ]);
    const [now] = await cluster.query('SELECT lease_owner FROM change_schedules WHERE instance_id = $1', [instanceId]);
    assert.ok(String(now.lease_owner).startsWith(`poller-${survivor.child.pid}-`), 'the survivor holds the lease now');
    for (const hook of rx.hooks) assertSigned(hook);
    // The baseline file was never announced.
    assert.ok(!changes(rx).some((c) => c.path === '/inbox/old.txt'));
  } finally {
    await cluster.close();
    await rx.close();
  }
});
