/**
 * ThreadSlots: the node thread's copy of its runner thread's slots decides which accepted jobs
 * are handed over, under the same limits the runner keeps itself (FERRY_JOB_CONCURRENCY,
 * FERRY_INSTANCE_CONCURRENCY), and none while jobs wait in the store; and the runner that adopts
 * them keeps the instance limit even when that copy lagged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { ThreadSlots, type ToRunnerThread } from '../../src/async/runner-thread.js';
import type { AcceptInput, Accepted, ClaimedJob } from '../../src/store/async.js';
import type { Store } from '../../src/store/store.js';
import type { Executor } from '../../src/async/executor.js';
import { Runner, type NotificationSink } from '../../src/async/runner.js';
import pino from 'pino';

const config = loadConfig({ FERRY_JOB_CONCURRENCY: '3', FERRY_INSTANCE_CONCURRENCY: '2' });

function input(instanceId: number): AcceptInput {
  return {
    organizationId: 1,
    userId: 1,
    instanceId,
    callbackUrl: 'https://example.com/hook',
    idempotencyKey: null,
    request: { method: 'GET', url: '/elements/api-v2/hubs/documents/ping', headers: {} },
    body: null,
  };
}

function job(eventId: number, instanceId: number): ClaimedJob {
  const i = input(instanceId);
  return { eventId, instanceId, organizationId: 1, userId: 1, request: i.request, body: null, attempts: 0 };
}

/** Offers `instances` in one accept batch, as the store would: ids from 1, handed where taken. */
function acceptBatch(slots: ThreadSlots, instances: number[]): { accepted: Accepted[]; handed: number } {
  const handoff = slots.offer();
  const accepted = instances.map((instanceId, i): Accepted => {
    const taken = handoff?.take(input(instanceId)) ?? false;
    return taken ? { eventId: i + 1, duplicate: false, job: job(i + 1, instanceId) } : { eventId: i + 1, duplicate: false };
  });
  slots.accepted(handoff, accepted);
  return { accepted, handed: accepted.filter((a) => a.job).length };
}

function setup(): { slots: ThreadSlots; posted: ToRunnerThread[] } {
  const posted: ToRunnerThread[] = [];
  const slots = new ThreadSlots('runner-test', config, (m) => posted.push(m));
  return { slots, posted };
}

test('nothing is handed over until the thread reports the store drained', () => {
  const { slots, posted } = setup();
  assert.equal(slots.offer(), undefined);
  const { handed } = acceptBatch(slots, [1]);
  assert.equal(handed, 0);
  assert.deepEqual(posted, [{ type: 'wake', what: 'jobs' }]);
  slots.apply({ launched: [], finished: [], backlog: false });
  assert.ok(slots.offer());
});

test('handoffs stop at FERRY_INSTANCE_CONCURRENCY per instance and FERRY_JOB_CONCURRENCY in all', () => {
  const { slots, posted } = setup();
  slots.apply({ launched: [], finished: [], backlog: false });
  // Instance 7 may have two jobs running, the thread three in all.
  const first = acceptBatch(slots, [7, 7, 7, 8, 9]);
  assert.deepEqual(
    first.accepted.map((a) => Boolean(a.job)),
    [true, true, false, true, false],
  );
  const adopt = posted.find((m) => m.type === 'adopt');
  assert.deepEqual(adopt?.type === 'adopt' && adopt.jobs.map((j) => j.eventId), [1, 2, 4]);
  // Jobs left in the store: no more handoffs, and the thread is woken to claim them.
  assert.deepEqual(posted.at(-1), { type: 'wake', what: 'jobs' });
  assert.equal(slots.offer(), undefined);

  // The thread claimed instance 9's job, and finished one of instance 7's.
  slots.apply({ launched: [9], finished: [7], backlog: false });
  const second = acceptBatch(slots, [9, 7, 7]);
  assert.deepEqual(
    second.accepted.map((a) => Boolean(a.job)),
    [false, false, false],
    'three running (one each of 7, 8 and 9): the thread is full',
  );
  slots.apply({ launched: [], finished: [8], backlog: false });
  const third = acceptBatch(slots, [7, 7]);
  assert.deepEqual(
    third.accepted.map((a) => Boolean(a.job)),
    [true, false],
  );
});

test('a failed accept gives back every slot it reserved', () => {
  const { slots } = setup();
  slots.apply({ launched: [], finished: [], backlog: false });
  const handoff = slots.offer()!;
  assert.ok(handoff.take(input(1)));
  assert.ok(handoff.take(input(1)));
  assert.ok(!handoff.take(input(1)), 'instance 1 is at its limit');
  slots.accepted(handoff, []); // the transaction failed: nothing was handed off
  const again = slots.offer()!;
  assert.ok(again.take(input(1)));
  assert.ok(again.take(input(1)));
});

test('a job handed over beyond its instance limit waits for a free slot on the runner thread', async () => {
  const limits = loadConfig({ FERRY_INSTANCE_CONCURRENCY: '1', FERRY_JOB_CONCURRENCY: '8' });
  let running = 0;
  let most = 0;
  const finished: number[] = [];
  const executor: Executor = {
    async replay(j) {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
      finished.push(j.eventId);
      return { statusCode: 200, contentType: 'application/json', payload: Buffer.from('{}'), changes: [] };
    },
    async deliver() {
      throw new Error('not used');
    },
  };
  const store = {
    claimJobs: async () => [],
    completeJobs: async () => [],
    renewLeases: async () => {},
  } as unknown as Store;
  const sink: NotificationSink = { offer: () => undefined, adopt: () => {} };
  const runner = new Runner(executor, store, limits, pino({ level: 'silent' }), sink);
  const ended: number[] = [];
  runner.watch = { launched: () => {}, finished: (id) => ended.push(id), backlog: () => {} };
  // Three jobs of instance 5 arrive together, as a lagging copy of the slots could send them.
  runner.adopt([job(1, 5), job(2, 5), job(3, 5)]);
  const deadline = Date.now() + 5_000;
  while (finished.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  await runner.stop();
  assert.deepEqual(finished, [1, 2, 3], 'every job ran, in order');
  assert.equal(most, 1, 'FERRY_INSTANCE_CONCURRENCY=1 was exceeded');
  assert.deepEqual(ended, [5, 5, 5]);
});
