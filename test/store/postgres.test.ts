/**
 * The store conformance suite on PostgreSQL (a fresh schema for the run, emptied before each
 * test), plus what only a shared store must do: two stores (two pools, as two nodes would have)
 * claiming, migrating and accepting at the same time, the per-instance limit across them, and
 * LISTEN/NOTIFY wake-ups including a dropped listening connection. Skipped with a reason when
 * the server is not reachable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { AcceptInput } from '../../src/store/async.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import type { Store } from '../../src/store/store.js';
import { freshSchema, pgSkipReason, pgTestUrl, type TestSchema } from '../helpers/postgres.js';
import { runStoreConformance } from './conformance.js';

const url = await pgTestUrl();

if (!url) {
  it('PostgreSQL store', { skip: pgSkipReason() }, () => {});
} else {
  // One fresh schema for the suite, emptied before each test; each test gets its own store
  // (its own pool), as a restarted node would.
  const suiteSchema = freshSchema(url);
  after(() => suiteSchema.drop());
  runStoreConformance('postgres', async () => {
    await suiteSchema.empty();
    const store = new PostgresStore({ url, schema: suiteSchema.schema, poolSize: 4 });
    await store.migrate();
    return { store, cleanup: () => store.close() };
  });
  sharedStoreTests(url);
}

function sharedStoreTests(url: string): void {
  describe('postgres: several nodes on one database', () => {
    let schema: TestSchema;
    let a: PostgresStore;
    let b: PostgresStore;
    let instanceId: number;
    let base: Omit<AcceptInput, 'idempotencyKey'>;

    before(async () => {
      schema = freshSchema(url);
      a = new PostgresStore({ url, schema: schema.schema, poolSize: 4 });
      b = new PostgresStore({ url, schema: schema.schema, poolSize: 4 });
      // Two nodes starting together both migrate; the advisory lock makes them take turns.
      await Promise.all([a.migrate(), b.migrate(), a.migrate()]);
      const org = await a.createOrganization({ name: 'org', secretHash: 'o' });
      const user = await b.createUser({ organizationId: org.id, emailAddress: 'u@x', firstName: 'U', lastName: 'X', secretHash: 'u' });
      const inst = await a.createInstance({
        organizationId: org.id,
        userId: user.id,
        elementKey: 'localfs',
        name: 'i',
        tags: [],
        configuration: {},
        tokenHash: 't',
      });
      instanceId = inst.id;
      base = {
        organizationId: org.id,
        userId: user.id,
        instanceId,
        callbackUrl: 'https://receiver.example/hook',
        request: { method: 'GET', url: '/elements/api-v2/hubs/documents/ping', headers: {} },
        body: null,
      };
    });

    after(async () => {
      await a?.close();
      await b?.close();
      await schema?.drop();
    });

    /** Leases every job there is, from both nodes at once, until none is left. */
    async function drain(perInstance: number): Promise<number[]> {
      const claimed: number[] = [];
      const node = async (store: Store, name: string) => {
        for (let idle = 0; idle < 3; ) {
          const jobs = await store.claimJobs(name, 7, 60_000, perInstance);
          if (!jobs.length) idle++;
          claimed.push(...jobs.map((j) => j.eventId));
          await store.completeJobs(name, jobs.map((j) => ({
            eventId: j.eventId,
            execution: 'completed' as const,
            statusCode: 200,
            response: null,
            buildNotification: (id: number) => JSON.stringify({ notificationId: id }),
          })));
        }
      };
      await Promise.all([node(a, 'a1'), node(b, 'b1'), node(a, 'a2'), node(b, 'b2')]);
      return claimed;
    }

    it('nodes migrating a fresh schema at the same time apply each migration once', async () => {
      const fresh = freshSchema(url);
      const nodes = Array.from({ length: 3 }, () => new PostgresStore({ url, schema: fresh.schema, poolSize: 2 }));
      const admin = new pg.Client({ connectionString: url });
      try {
        await Promise.all(nodes.map((n) => n.migrate()));
        await Promise.all(nodes.map((n) => n.migrate()));
        await admin.connect();
        const { rows } = await admin.query(`SELECT version, count(*)::int AS n FROM ${fresh.schema}.ferry_migrations GROUP BY version`);
        assert.ok(rows.length >= 1);
        assert.ok(rows.every((r) => r.n === 1), 'each version recorded once');
        const org = await nodes[0].createOrganization({ name: 'x', secretHash: 'x' });
        assert.equal((await nodes[2].getOrganizationByName('x'))?.id, org.id, 'every node sees the same tables');
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
        await admin.end();
        await fresh.drop();
      }
    });

    it('two nodes claiming 500 jobs concurrently never lease the same job twice', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push(...(await a.acceptEvents(Array.from({ length: 100 }, () => ({ ...base, idempotencyKey: null })))).map((r) => r.eventId));
      }
      const claimed = await drain(1000);
      assert.equal(claimed.length, 500);
      assert.equal(new Set(claimed).size, 500, 'no job claimed twice');
      assert.deepEqual([...claimed].sort((x, y) => x - y), ids);
      assert.equal((await b.asyncCounts()).jobs, 0);
    });

    it('the per-instance limit holds across nodes', async () => {
      await a.acceptEvents(Array.from({ length: 40 }, () => ({ ...base, idempotencyKey: null })));
      const leased = (
        await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).claimJobs(`n${i}`, 10, 60_000, 3)),
        )
      ).flat();
      assert.equal(leased.length, 3, 'at most 3 of the instance run at once, whichever node claims');
      await a.completeJobs('x', leased.map((j) => ({
        eventId: j.eventId,
        execution: 'completed' as const,
        statusCode: 200,
        response: null,
        buildNotification: (id: number) => String(id),
      })));
      assert.equal((await drain(3)).length, 37);
    });

    it('the per-instance limit holds under churn: claims of every size while jobs complete', async () => {
      await a.acceptEvents(Array.from({ length: 150 }, () => ({ ...base, idempotencyKey: null })));
      // Held from the moment a claim returns until its completion starts: a subset of what the
      // database counts as leased, so exceeding the limit here means the database exceeded it.
      let held = 0;
      let most = 0;
      let done = 0;
      const loop = async (store: Store, name: string, limit: number) => {
        for (let idle = 0; idle < 20 && done < 150; ) {
          const jobs = await store.claimJobs(name, limit, 60_000, 3);
          held += jobs.length;
          most = Math.max(most, held);
          if (!jobs.length) {
            idle++;
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
          await new Promise((r) => setTimeout(r, Math.random() * 10));
          held -= jobs.length;
          done += jobs.length;
          await store.completeJobs(name, jobs.map((j) => ({
            eventId: j.eventId,
            execution: 'completed' as const,
            statusCode: 200,
            response: null,
            buildNotification: (id: number) => String(id),
          })));
        }
      };
      await Promise.all([1, 2, 3, 1, 2, 3].map((limit, i) => loop(i % 2 ? a : b, `c${i}`, limit)));
      assert.equal(done, 150);
      assert.ok(most <= 3, `at most 3 jobs of the instance leased at once, saw ${most}`);
      assert.ok(most >= 2, 'the claimers did run in parallel');
    });

    it('one idempotency key accepted concurrently on two nodes makes one event', async () => {
      const before = (await a.asyncCounts()).events;
      for (let round = 0; round < 5; round++) {
        const key = `key-${round}`;
        const res = (
          await Promise.all([
            a.acceptEvents([{ ...base, idempotencyKey: key }]),
            b.acceptEvents([{ ...base, idempotencyKey: key }, { ...base, idempotencyKey: `${key}-b` }]),
            a.acceptEvents([{ ...base, idempotencyKey: `${key}-b` }]),
            b.acceptEvents([{ ...base, idempotencyKey: key }]),
          ])
        ).flat();
        const same = res.filter((_, i) => i !== 2 && i !== 3);
        assert.equal(new Set(same.map((r) => r.eventId)).size, 1, `one eventId for ${key}`);
        assert.equal(same.filter((r) => !r.duplicate).length, 1);
        assert.equal(res[2].eventId, res[3].eventId);
        assert.equal([res[2], res[3]].filter((r) => !r.duplicate).length, 1);
      }
      assert.equal((await a.asyncCounts()).events, before + 10);
      await drain(1000);
    });

    it('LISTEN/NOTIFY wakes the other node after accepts and completions', async () => {
      const wakes = { jobs: 0, notifications: 0 };
      let resolveJobs!: () => void;
      let resolveNotifications!: () => void;
      const jobsWoken = new Promise<void>((r) => (resolveJobs = r));
      const notificationsWoken = new Promise<void>((r) => (resolveNotifications = r));
      const stopJobs = b.onWake('jobs', () => {
        wakes.jobs++;
        resolveJobs();
      });
      const stopNotifications = b.onWake('notifications', () => {
        wakes.notifications++;
        resolveNotifications();
      });
      try {
        await new Promise((r) => setTimeout(r, 200)); // the listening connection is up
        await a.acceptEvents([{ ...base, idempotencyKey: null }]);
        await withTimeout(jobsWoken, 'jobs wake-up');
        const jobs = await a.claimJobs('a', 10, 60_000, 10);
        await a.completeJobs('a', jobs.map((j) => ({
          eventId: j.eventId,
          execution: 'completed' as const,
          statusCode: 200,
          response: null,
          buildNotification: (id: number) => String(id),
        })));
        await withTimeout(notificationsWoken, 'notifications wake-up');
        assert.ok(wakes.jobs >= 1 && wakes.notifications >= 1);
      } finally {
        stopJobs();
        stopNotifications();
      }
    });

    it("a store in another schema of the same database is not woken by this schema's accepts", async () => {
      const other = freshSchema(url);
      const stranger = new PostgresStore({ url, schema: other.schema, poolSize: 2 });
      let strangerWakes = 0;
      let resolveOwn!: () => void;
      const ownWoken = new Promise<void>((r) => (resolveOwn = r));
      const stopStranger = stranger.onWake('jobs', () => strangerWakes++);
      const stopOwn = b.onWake('jobs', () => resolveOwn());
      try {
        await stranger.migrate();
        await new Promise((r) => setTimeout(r, 200)); // both listening connections are up
        await a.acceptEvents([{ ...base, idempotencyKey: null }]);
        await withTimeout(ownWoken, 'jobs wake-up in the same schema');
        await new Promise((r) => setTimeout(r, 300)); // a NOTIFY would have arrived by now
        assert.equal(strangerWakes, 0, 'the other schema was woken');
      } finally {
        stopStranger();
        stopOwn();
        await stranger.close();
        await other.drop();
        await drain(1000);
      }
    });

    it('a dropped listening connection reconnects, wakes its handlers once and listens again', async () => {
      let wakes = 0;
      let wake: () => void = () => {};
      const next = () => new Promise<void>((r) => (wake = r));
      const stop = b.onWake('jobs', () => {
        wakes++;
        wake();
      });
      const admin = new pg.Client({ connectionString: url });
      try {
        await admin.connect();
        let pid: number | undefined;
        for (let i = 0; i < 50 && !pid; i++) {
          await new Promise((r) => setTimeout(r, 50));
          const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [
            `ferry-listen:${schema.schema}`,
          ]);
          pid = rows[0]?.pid;
        }
        assert.ok(pid, 'the listening connection is up');
        const reconnected = next();
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        await withTimeout(reconnected, 'wake-up after reconnecting');
        assert.equal(wakes, 1, 'one wake-up for whatever was missed');
        const woken = next();
        await a.acceptEvents([{ ...base, idempotencyKey: null }]);
        await withTimeout(woken, 'jobs wake-up on the new connection');
      } finally {
        stop();
        await admin.end();
      }
      await drain(1000);
    });
  });
}

function withTimeout(p: Promise<void>, what: string): Promise<void> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within 5 s`)), 5000);
    }),
  ]).finally(() => clearTimeout(timer));
}
