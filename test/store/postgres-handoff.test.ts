/**
 * Handoffs on PostgreSQL, where several nodes share the store and one node's statements
 * overlap: what the conformance suite cannot see. An accept hands a job off only when no other
 * node holds a lease on its instance, so the instance limit holds across nodes while one node
 * hands off and others claim; a node's own claim and handoffs in flight are ordered so that
 * together they keep the limit too; a node's own NOTIFYs do not wake it (it wakes its runner and
 * sender directly) while they still wake the others; a notification for a deactivated
 * subscription is created queued and never offered. Skipped with a reason when the server is
 * not reachable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AcceptInput, ClaimedJob, Handoff, JobOutcome, NotificationOffer } from '../../src/store/async.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { freshSchema, pgSkipReason, pgTestUrl, type TestSchema } from '../helpers/postgres.js';

const url = await pgTestUrl();
const LONG = 60_000;
const HOOK = 'https://receiver.example/hook';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function outcome(eventId: number): JobOutcome {
  return {
    eventId,
    execution: 'completed',
    statusCode: 200,
    response: null,
    buildNotification: (id) => JSON.stringify({ eventId, notificationId: id }),
  };
}

if (!url) {
  it('PostgreSQL handoff', { skip: pgSkipReason() }, () => {});
} else {
  describe('postgres: handoffs with several nodes', () => {
    let schema: TestSchema;
    let a: PostgresStore;
    let b: PostgresStore;
    let org: number;
    let user: number;
    let seq = 0;

    before(async () => {
      schema = freshSchema(url);
      a = new PostgresStore({ url, schema: schema.schema, poolSize: 4 });
      b = new PostgresStore({ url, schema: schema.schema, poolSize: 4 });
      await a.migrate();
      org = (await a.createOrganization({ name: 'org', secretHash: 'o' })).id;
      user = (await a.createUser({ organizationId: org, emailAddress: 'u@x', firstName: 'U', lastName: 'X', secretHash: 'u' })).id;
    });

    after(async () => {
      await a?.close();
      await b?.close();
      await schema?.drop();
    });

    async function instance(): Promise<number> {
      const i = await a.createInstance({
        organizationId: org,
        userId: user,
        elementKey: 'localfs',
        name: `i${++seq}`,
        tags: [],
        configuration: {},
        tokenHash: `t${seq}`,
      });
      return i.id;
    }

    function input(instanceId: number, callbackUrl = HOOK): AcceptInput {
      return {
        organizationId: org,
        userId: user,
        instanceId,
        callbackUrl,
        idempotencyKey: null,
        request: { method: 'GET', url: '/elements/api-v2/hubs/documents/ping', headers: {} },
        body: null,
      };
    }

    const taking = <T>(owner: string, offers: T[] = []): Handoff<T> & { offers: T[] } => ({
      owner,
      leaseMs: LONG,
      offers,
      take: (item: T) => (offers.push(item), true),
    });

    it("an accept hands off no job of an instance on which another node holds a lease", async () => {
      const busy = await instance();
      const free = await instance();
      await b.acceptEvents([input(busy)]);
      const theirs = await b.claimJobs('runner-b', 10, LONG, 8);
      assert.equal(theirs.length, 1);
      const h = taking<AcceptInput>('runner-a');
      const res = await a.acceptEvents([input(busy), input(free), input(busy)], h);
      assert.equal(h.offers.length, 3, 'the runner is asked about every new job');
      assert.deepEqual(res.map((r) => Boolean(r.job)), [false, true, false], 'only the instance nobody else runs is handed off');
      // Its own leases do not stop a node: the instance is then counted by its runner alone.
      const again = await a.acceptEvents([input(free)], taking<AcceptInput>('runner-a'));
      assert.ok(again[0].job);
      const left = await a.claimJobs('runner-a', 10, LONG, 8);
      assert.deepEqual(left.map((j) => j.eventId), [res[0].eventId, res[2].eventId]);
      await a.completeJobs('runner-a', [...left, res[1].job!, again[0].job!].map((j) => outcome(j.eventId)));
      await b.completeJobs('runner-b', theirs.map((j) => outcome(j.eventId)));
    });

    it('the instance limit holds across nodes while one node hands jobs off and others claim', async () => {
      const inst = await instance();
      const LIMIT = 3;
      const TOTAL = 120;
      // Jobs held from the moment a node gets them until their completion starts: a subset of what
      // the database counts as leased, so exceeding the limit here means the database did.
      let held = 0;
      let most = 0;
      let done = 0;
      const hold = (n: number) => {
        held += n;
        most = Math.max(most, held);
      };
      const finish = async (store: PostgresStore, owner: string, jobs: ClaimedJob[]) => {
        await sleep(Math.random() * 8);
        held -= jobs.length;
        await store.completeJobs(owner, jobs.map((j) => outcome(j.eventId)));
        done += jobs.length;
      };
      // Node a's runner: its own count of the instance's jobs, kept within the limit by `take`.
      let mine = 0;
      const running: Promise<void>[] = [];
      const accepting = (async () => {
        for (let sent = 0; sent < TOTAL; sent += 3) {
          let reserved = 0;
          const h: Handoff<AcceptInput> = {
            owner: 'runner-a',
            leaseMs: LONG,
            take: () => (mine + reserved < LIMIT ? (reserved++, true) : false),
          };
          const res = await a.acceptEvents([input(inst), input(inst), input(inst)], h);
          const jobs = res.flatMap((r) => (r.job ? [r.job] : []));
          mine += jobs.length;
          hold(jobs.length);
          running.push(finish(a, 'runner-a', jobs).then(() => void (mine -= jobs.length)));
          await sleep(Math.random() * 4);
        }
      })();
      const claiming = async (store: PostgresStore, owner: string, limit: number) => {
        for (let idle = 0; idle < 30 && done < TOTAL; ) {
          const jobs = await store.claimJobs(owner, limit, LONG, LIMIT);
          if (!jobs.length) {
            idle++;
            await sleep(5);
            continue;
          }
          idle = 0;
          hold(jobs.length);
          await finish(store, owner, jobs);
        }
      };
      await Promise.all([accepting, claiming(b, 'runner-b1', 2), claiming(b, 'runner-b2', 3)]);
      await Promise.all(running);
      // Whatever no claimer got before they gave up.
      for (let jobs; (jobs = await a.claimJobs('runner-a', 10, LONG, LIMIT)).length; ) {
        hold(jobs.length);
        await finish(a, 'runner-a', jobs);
      }
      assert.equal(done, TOTAL);
      assert.ok(most <= LIMIT, `at most ${LIMIT} jobs of the instance leased at once, saw ${most}`);
      assert.equal((await a.asyncCounts()).jobs, 0);
    });

    it("a node's own claim in flight and its handoffs never exceed the instance limit together", async () => {
      // The runner's count misses a claim's jobs until the claim returns, and a claim counts only
      // committed leases: the store orders the two when they overlap on one node.
      const inst = await instance();
      await a.acceptEvents([input(inst), input(inst)]);
      const claiming = a.claimJobs('runner-r', 10, LONG, 2);
      const offered: AcceptInput[] = [];
      const during = await a.acceptEvents([input(inst)], taking('runner-r', offered));
      assert.deepEqual(offered, [], 'nothing is offered while a claim of the same runner is in flight');
      assert.equal(during[0].job, undefined);
      const claimed = await claiming;
      assert.equal(claimed.length, 2);
      await a.completeJobs('runner-r', claimed.map((j) => outcome(j.eventId)));

      // The other way round: a claim started after a handoff was offered counts the handed-off job.
      const handing = a.acceptEvents([input(inst)], taking('runner-r'));
      const after = await a.claimJobs('runner-r', 10, LONG, 1);
      const [handed] = await handing;
      assert.ok(handed.job, 'the job was handed off');
      assert.deepEqual(after, [], 'the claim saw the handed-off job hold the only slot');
      await a.completeJobs('runner-r', [outcome(handed.eventId)]);
      const rest = await a.claimJobs('runner-r', 10, LONG, 1);
      assert.deepEqual(rest.map((j) => j.eventId), [during[0].eventId]);
      await a.completeJobs('runner-r', rest.map((j) => outcome(j.eventId)));
    });

    it("a node's own NOTIFYs do not wake it; the other node's do", async () => {
      const inst = await instance();
      const woken = { a: 0, b: 0 };
      const stops = [a.onWake('jobs', () => woken.a++), b.onWake('jobs', () => woken.b++)];
      try {
        await sleep(300); // both listening connections are up
        await a.acceptEvents([input(inst)]);
        for (let i = 0; i < 50 && !woken.b; i++) await sleep(20);
        await sleep(100);
        assert.deepEqual(woken, { a: 0, b: 1 });
        const jobs = await b.claimJobs('runner-b', 10, LONG, 8);
        await b.completeJobs('runner-b', jobs.map((j) => outcome(j.eventId)));
      } finally {
        for (const stop of stops) stop();
      }
    });

    it('a notification for a deactivated subscription is created queued and never offered', async () => {
      const inst = await instance();
      const hook = 'https://gone.example/hook';
      const [first, second] = await a.acceptEvents([input(inst, hook), input(inst, hook)]);
      const jobs = await a.claimJobs('runner-a', 10, LONG, 8);
      assert.equal(jobs.length, 2);
      const offers: NotificationOffer[] = [];
      const [due] = await a.completeJobs('runner-a', [outcome(first.eventId)], taking('sender-a', offers));
      assert.equal(due.eventId, first.eventId);
      await a.recordDeliveries([
        {
          notificationId: due.notificationId,
          url: hook,
          at: new Date(),
          durationMs: 1,
          statusCode: 410,
          error: null,
          next: { status: 'queued', deactivate: true },
        },
      ]);
      assert.deepEqual(await a.completeJobs('runner-a', [outcome(second.eventId)], taking('sender-a', offers)), []);
      assert.equal(offers.length, 1, 'only the first notification was offered');
      const ev = await a.getEvent(org, second.eventId);
      assert.equal(ev?.notification?.status, 'queued');
      assert.equal(ev?.notification?.nextAttemptDate, null);
    });
  });
}
