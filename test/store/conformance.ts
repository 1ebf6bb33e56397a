/**
 * The store conformance suite: the behaviour of the whole `Store` interface, run against every
 * backend through a small harness (SQLite in sqlite.test.ts, PostgreSQL in postgres.test.ts).
 * Each test gets a fresh, migrated store from the harness and cleans it up afterwards.
 *
 * Where backends differ by design, the test reads `store.capabilities` (data, not `if`s per
 * backend name). A backend that cannot pass a case lists it in `options.skip` with the reason.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import type { AcceptInput, DeliveryRecord, Handoff, JobOutcome, NotificationOffer } from '../../src/store/async.js';
import type { Instance, Organization, Store, User } from '../../src/store/store.js';

export interface StoreHarness {
  store: Store;
  cleanup(): Promise<void>;
}

export interface ConformanceOptions {
  /** Test titles this backend skips, each with the reason. */
  skip?: Record<string, string>;
}

interface Tenant {
  org: Organization;
  user: User;
  instance: Instance;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOOK = 'https://receiver.example/hook';
const OTHER_HOOK = 'https://other.example/hook';
const LONG = 60_000;

let seq = 0;

async function tenant(store: Store, label = 'a'): Promise<Tenant> {
  const n = ++seq;
  const org = await store.createOrganization({ name: `org-${label}-${n}`, secretHash: `org-secret-${label}-${n}` });
  const user = await store.createUser({
    organizationId: org.id,
    emailAddress: `${label}@example.test`,
    firstName: 'Ada',
    lastName: 'Lovelace',
    secretHash: `user-secret-${label}-${n}`,
  });
  const instance = await addInstance(store, { org, user }, `inst-${label}-${n}`);
  return { org, user, instance };
}

function addInstance(store: Store, t: { org: Organization; user: User }, name: string, tags: string[] = ['t1']): Promise<Instance> {
  return store.createInstance({
    organizationId: t.org.id,
    userId: t.user.id,
    elementKey: 'localfs',
    name,
    tags,
    configuration: { root: name, 'event.notification.callback.url': HOOK },
    tokenHash: `token-${name}-${crypto.randomBytes(4).toString('hex')}`,
  });
}

function input(t: Tenant, over: Partial<AcceptInput> = {}): AcceptInput {
  return {
    organizationId: t.org.id,
    userId: t.user.id,
    instanceId: t.instance.id,
    callbackUrl: HOOK,
    idempotencyKey: null,
    request: { method: 'GET', url: '/elements/api-v2/hubs/documents/ping', headers: { accept: 'application/json' } },
    body: null,
    ...over,
  };
}

async function accept(store: Store, t: Tenant, n = 1, over: Partial<AcceptInput> = {}): Promise<number[]> {
  const res = await store.acceptEvents(Array.from({ length: n }, () => input(t, over)));
  return res.map((r) => r.eventId);
}

/** An outcome whose notification body names its id; `built` records each buildNotification call. */
function outcome(eventId: number, over: Partial<JobOutcome> = {}): JobOutcome & { built: number[] } {
  const built: number[] = [];
  return {
    eventId,
    execution: 'completed',
    statusCode: 200,
    response: { ok: eventId },
    buildNotification: (id) => {
      built.push(id);
      return JSON.stringify({ eventId, notificationId: id, eventStatus: 'completed' });
    },
    built,
    ...over,
  };
}

/** Accepts, runs and completes one event; returns its id. */
async function finished(store: Store, t: Tenant, over: Partial<AcceptInput> = {}, o: Partial<JobOutcome> = {}): Promise<number> {
  const [id] = await accept(store, t, 1, over);
  const claimed = await store.claimJobs('runner', 100, LONG, 100);
  assert.ok(claimed.some((j) => j.eventId === id));
  await store.completeJobs('runner', [outcome(id, o)]);
  return id;
}

function record(notificationId: number, url: string, next: DeliveryRecord['next'], statusCode: number | null = 200): DeliveryRecord {
  return { notificationId, url, at: new Date(), durationMs: 12.4, statusCode, error: statusCode ? null : 'ECONNREFUSED', next };
}

async function notificationOf(store: Store, t: Tenant, eventId: number) {
  const ev = await store.getEvent(t.org.id, eventId);
  assert.ok(ev?.notification, `event ${eventId} has a notification`);
  return ev.notification;
}

export function runStoreConformance(
  name: string,
  harness: () => Promise<StoreHarness | null>,
  options: ConformanceOptions = {},
): void {
  describe(`store conformance: ${name}`, () => {
    let h: StoreHarness | null = null;
    beforeEach(async () => {
      h = await harness();
    });
    afterEach(async () => {
      await h?.cleanup();
      h = null;
    });
    const test = (title: string, fn: (store: Store) => Promise<void>) => {
      const reason = options.skip?.[title];
      it(title, reason ? { skip: reason } : {}, async (t) => {
        if (!h) return t.skip(`${name} store unavailable`);
        await fn(h.store);
      });
    };

    // ---- migrations and identity ----------------------------------------------------------

    test('migrate twice is harmless', async (store) => {
      const t = await tenant(store);
      await store.migrate();
      await store.migrate();
      assert.equal(await store.countOrganizations(), 1);
      assert.equal((await store.getInstance(t.org.id, t.instance.id))?.name, t.instance.name);
    });

    test('organizations and users: create, look up by secret hash, name and id, rotate', async (store) => {
      assert.equal(await store.countOrganizations(), 0);
      const before = Date.now();
      const org = await store.createOrganization({ name: 'acme', secretHash: 'org-hash' });
      assert.equal(org.name, 'acme');
      assert.ok(org.createdDate instanceof Date);
      assert.ok(org.createdDate.getTime() >= before - 1000 && org.createdDate.getTime() <= Date.now() + 1000);
      assert.equal(await store.countOrganizations(), 1);
      assert.deepEqual(await store.findOrganizationBySecretHash('org-hash'), org);
      assert.equal(await store.findOrganizationBySecretHash('nope'), null);
      assert.deepEqual(await store.getOrganizationByName('acme'), org);
      assert.equal(await store.getOrganizationByName('other'), null);

      const user = await store.createUser({
        organizationId: org.id,
        emailAddress: 'ada@example.test',
        firstName: 'Ada',
        lastName: 'Lovelace',
        secretHash: 'user-hash',
      });
      assert.deepEqual(
        { ...user, createdDate: null },
        { id: user.id, organizationId: org.id, emailAddress: 'ada@example.test', firstName: 'Ada', lastName: 'Lovelace', createdDate: null },
      );
      assert.deepEqual(await store.findUserBySecretHash('user-hash'), user);
      assert.equal(await store.findUserBySecretHash('org-hash'), null);
      assert.deepEqual(await store.getUser(user.id), user);
      assert.equal(await store.getUser(user.id + 1000), null);

      assert.equal(await store.setSecretHash('organization', org.id, 'org-hash-2'), true);
      assert.equal(await store.findOrganizationBySecretHash('org-hash'), null);
      assert.equal((await store.findOrganizationBySecretHash('org-hash-2'))?.id, org.id);
      assert.equal(await store.setSecretHash('user', user.id, 'user-hash-2'), true);
      assert.equal(await store.findUserBySecretHash('user-hash'), null);
      assert.equal((await store.findUserBySecretHash('user-hash-2'))?.id, user.id);
      assert.equal(await store.setSecretHash('user', user.id + 1000, 'x'), false);
      assert.equal(await store.setSecretHash('organization', org.id + 1000, 'y'), false);
    });

    // ---- instances -----------------------------------------------------------------------------

    test('instances: create, read, update and delete', async (store) => {
      const { org, user } = await tenant(store);
      const configuration = { root: 'docs', 'z.last': '1', 'a.first': '2', secret: 'v1:ciphertext' };
      const created = await store.createInstance({
        organizationId: org.id,
        userId: user.id,
        elementKey: 'sftp',
        name: 'files',
        tags: ['x', 'y'],
        configuration,
        tokenHash: 'tok-1',
      });
      assert.equal(created.organizationId, org.id);
      assert.equal(created.userId, user.id);
      assert.equal(created.elementKey, 'sftp');
      assert.deepEqual(created.tags, ['x', 'y']);
      assert.deepEqual(created.configuration, configuration);
      assert.deepEqual(Object.keys(created.configuration), Object.keys(configuration), 'configuration keys keep their order');
      assert.equal(created.disabled, false);
      assert.equal(created.valid, true);
      assert.ok(created.createdDate instanceof Date && created.updatedDate instanceof Date);
      assert.deepEqual(await store.getInstance(org.id, created.id), created);
      assert.deepEqual(await store.findInstanceByTokenHash('tok-1'), created);
      assert.equal(await store.findInstanceByTokenHash('tok-2'), null);

      await sleep(5);
      const renamed = await store.updateInstance(org.id, created.id, { name: 'renamed', disabled: true });
      assert.ok(renamed);
      assert.equal(renamed.name, 'renamed');
      assert.equal(renamed.disabled, true);
      assert.deepEqual(renamed.tags, ['x', 'y'], 'fields not in the patch are kept');
      assert.deepEqual(renamed.configuration, configuration);
      assert.ok(renamed.updatedDate.getTime() > created.updatedDate.getTime());
      assert.equal(renamed.createdDate.getTime(), created.createdDate.getTime());
      const patched = await store.updateInstance(org.id, created.id, {
        tags: [],
        configuration: { root: 'other' },
        valid: false,
        disabled: false,
      });
      assert.deepEqual(
        [patched?.name, patched?.tags, patched?.configuration, patched?.valid, patched?.disabled],
        ['renamed', [], { root: 'other' }, false, false],
      );
      assert.deepEqual(await store.getInstance(org.id, created.id), patched);

      // Key rotation (issue 24): previous signature keys with the end of their overlap.
      assert.deepEqual(created.retiredSignatureKeys, [], 'a new instance has no previous keys');
      const retired = [
        { key: 'v1:sealed-b', until: new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 678)) },
        { key: 'v1:sealed-a', until: new Date(Date.UTC(2030, 0, 1)) },
      ];
      const rotated = await store.updateInstance(org.id, created.id, { retiredSignatureKeys: retired });
      assert.deepEqual(rotated?.retiredSignatureKeys, retired);
      assert.deepEqual(rotated?.configuration, { root: 'other' }, 'the configuration is kept');
      assert.deepEqual((await store.getInstance(org.id, created.id))?.retiredSignatureKeys, retired);
      const renamedAgain = await store.updateInstance(org.id, created.id, { name: 'renamed again' });
      assert.deepEqual(renamedAgain?.retiredSignatureKeys, retired, 'kept when the patch does not name them');

      assert.equal(await store.updateInstance(org.id, created.id + 1000, { name: 'ghost' }), null);
      assert.equal(await store.deleteInstance(org.id, created.id), true);
      assert.equal(await store.getInstance(org.id, created.id), null);
      assert.equal(await store.findInstanceByTokenHash('tok-1'), null);
      assert.equal(await store.deleteInstance(org.id, created.id), false);
    });

    test('instances: invisible across organizations', async (store) => {
      const a = await tenant(store, 'a');
      const b = await tenant(store, 'b');
      assert.equal(await store.getInstance(b.org.id, a.instance.id), null);
      assert.equal(await store.updateInstance(b.org.id, a.instance.id, { name: 'stolen' }), null);
      assert.equal(await store.deleteInstance(b.org.id, a.instance.id), false);
      assert.deepEqual(
        (await store.listInstances(b.org.id)).map((i) => i.id),
        [b.instance.id],
      );
      const still = await store.getInstance(a.org.id, a.instance.id);
      assert.equal(still?.name, a.instance.name);
      assert.deepEqual(
        (await store.allInstances()).map((i) => i.id),
        [a.instance.id, b.instance.id],
        'allInstances spans organizations, oldest first',
      );
    });

    test('instances: list oldest first, filtered by element and by tags', async (store) => {
      const t = await tenant(store);
      const second = await addInstance(store, t, 'second', ['t1', 'blue']);
      const third = await store.createInstance({
        organizationId: t.org.id,
        userId: t.user.id,
        elementKey: 'amazons3',
        name: 'third',
        tags: ['blue', 'green'],
        configuration: {},
        tokenHash: 'tok-third',
      });
      const ids = async (filter?: { elementKey?: string; tags?: string[] }) =>
        (await store.listInstances(t.org.id, filter)).map((i) => i.id);
      assert.deepEqual(await ids(), [t.instance.id, second.id, third.id]);
      assert.deepEqual(await ids({ elementKey: 'localfs' }), [t.instance.id, second.id]);
      assert.deepEqual(await ids({ elementKey: 'sftp' }), []);
      assert.deepEqual(await ids({ tags: ['blue'] }), [second.id, third.id]);
      assert.deepEqual(await ids({ tags: ['blue', 't1'] }), [second.id], 'an instance must carry every tag');
      assert.deepEqual(await ids({ tags: ['blue', 'red'] }), []);
      assert.deepEqual(await ids({ tags: [] }), [t.instance.id, second.id, third.id]);
      assert.deepEqual(await ids({ elementKey: 'amazons3', tags: ['green'] }), [third.id]);
    });

    // ---- tags ------------------------------------------------------------------------------------

    test('tags: set, replace, remove, per instance', async (store) => {
      const t = await tenant(store);
      const other = await addInstance(store, t, 'other');
      await store.setTags(t.instance.id, '/a.txt', ['x', 'y']);
      await store.setTags(other.id, '/a.txt', ['z']);
      assert.deepEqual(await store.getTags(t.instance.id, ['/a.txt', '/missing']), new Map([['/a.txt', ['x', 'y']]]));
      await store.setTags(t.instance.id, '/a.txt', ['y']);
      assert.deepEqual(await store.getTags(t.instance.id, ['/a.txt']), new Map([['/a.txt', ['y']]]));
      await store.setTags(t.instance.id, '/a.txt', []);
      assert.deepEqual(await store.getTags(t.instance.id, ['/a.txt']), new Map());
      assert.deepEqual(await store.getTags(other.id, ['/a.txt']), new Map([['/a.txt', ['z']]]));
      assert.deepEqual(await store.getTags(t.instance.id, []), new Map());
    });

    test('tags: a thousand paths at once (a page, an export batch), odd names included', async (store) => {
      const t = await tenant(store);
      const other = await addInstance(store, t, 'other-many');
      const odd = ['/q"uote\'s.txt', '/ünï cödé/😀.txt', '/back\\slash', '/per%25cent'];
      const paths = [...odd, ...Array.from({ length: 996 }, (_, i) => `/d${i % 10}/f${i}.txt`)];
      // Only the other instance has tags: this one's lookup finds none.
      await store.setTags(other.id, paths[5], ['elsewhere']);
      assert.deepEqual(await store.getTags(t.instance.id, paths), new Map());
      const tagged = [...odd, paths[10], paths[999]];
      for (const [i, p] of tagged.entries()) await store.setTags(t.instance.id, p, [`t${i}`]);
      const found = await store.getTags(t.instance.id, [...paths, '/absent', paths[10]]);
      assert.deepEqual(new Map([...found].sort()), new Map(tagged.map((p, i) => [p, [`t${i}`]] as [string, string[]]).sort()));
      assert.deepEqual(await store.getTags(other.id, paths), new Map([[paths[5], ['elsewhere']]]));
    });

    const tree = ['/a', '/a/b', '/a/b/c.txt', '/a/d.txt', '/ab', '/ab/e.txt', '/a.txt', '/a-b'];
    const plant = async (store: Store, instanceId: number) => {
      for (const p of tree) await store.setTags(instanceId, p, [`tag${p}`]);
    };

    test('tags: move carries descendants, leaves siblings like /ab alone', async (store) => {
      const t = await tenant(store);
      await plant(store, t.instance.id);
      await store.setTags(t.instance.id, '/x/stale.txt', ['stale']);
      await store.setTags(t.instance.id, '/x', ['old-x']);
      await store.moveTags(t.instance.id, '/a', '/x');
      const all = await store.getTags(t.instance.id, [...tree, '/x', '/x/b', '/x/b/c.txt', '/x/d.txt', '/x/stale.txt']);
      assert.deepEqual(
        Object.fromEntries(all),
        {
          '/x': ['tag/a'],
          '/x/b': ['tag/a/b'],
          '/x/b/c.txt': ['tag/a/b/c.txt'],
          '/x/d.txt': ['tag/a/d.txt'],
          '/ab': ['tag/ab'],
          '/ab/e.txt': ['tag/ab/e.txt'],
          '/a.txt': ['tag/a.txt'],
          '/a-b': ['tag/a-b'],
        },
        'moved subtree replaces the destination subtree; /ab, /a.txt and /a-b stay',
      );
    });

    test('tags: copy carries descendants and keeps the source', async (store) => {
      const t = await tenant(store);
      await plant(store, t.instance.id);
      await store.copyTags(t.instance.id, '/a/b', '/a/copy');
      const all = await store.getTags(t.instance.id, [...tree, '/a/copy', '/a/copy/c.txt']);
      assert.deepEqual(all.get('/a/copy'), ['tag/a/b']);
      assert.deepEqual(all.get('/a/copy/c.txt'), ['tag/a/b/c.txt']);
      for (const p of tree) assert.deepEqual(all.get(p), [`tag${p}`], `${p} kept`);
      // Copy onto an existing tree replaces its tags.
      await store.copyTags(t.instance.id, '/ab', '/a/copy');
      const again = await store.getTags(t.instance.id, ['/a/copy', '/a/copy/c.txt', '/a/copy/e.txt']);
      assert.deepEqual(Object.fromEntries(again), { '/a/copy': ['tag/ab'], '/a/copy/e.txt': ['tag/ab/e.txt'] });
    });

    test('tags: delete forgets a path and its descendants only', async (store) => {
      const t = await tenant(store);
      await plant(store, t.instance.id);
      await store.deleteTags(t.instance.id, '/a');
      const left = await store.getTags(t.instance.id, tree);
      assert.deepEqual([...left.keys()].sort(), ['/a-b', '/a.txt', '/ab', '/ab/e.txt']);
    });

    test('tags: deleting an instance forgets its tags', async (store) => {
      const t = await tenant(store);
      await store.setTags(t.instance.id, '/f', ['x']);
      assert.equal(await store.deleteInstance(t.org.id, t.instance.id), true);
      assert.deepEqual(await store.getTags(t.instance.id, ['/f']), new Map());
    });

    // ---- settings --------------------------------------------------------------------------------

    test('settings: merge, overwrite, per organization', async (store) => {
      const a = await tenant(store, 'a');
      const b = await tenant(store, 'b');
      assert.deepEqual(await store.getSettings(a.org.id), {});
      await store.setSettings(a.org.id, { 'notification.webhook.failure.policy': 'queue' });
      await store.setSettings(a.org.id, { other: '1' });
      assert.deepEqual(await store.getSettings(a.org.id), { 'notification.webhook.failure.policy': 'queue', other: '1' });
      await store.setSettings(a.org.id, { 'notification.webhook.failure.policy': 'retry' });
      assert.equal((await store.getSettings(a.org.id))['notification.webhook.failure.policy'], 'retry');
      await store.setSettings(a.org.id, {});
      assert.deepEqual(await store.getSettings(b.org.id), {});
    });

    // ---- accept ------------------------------------------------------------------------------------

    test('acceptEvents: new events in input order, dispatched', async (store) => {
      const t = await tenant(store);
      const before = Date.now();
      const res = await store.acceptEvents([
        input(t, { request: { method: 'POST', url: '/elements/api-v2/hubs/documents/folders', headers: { 'content-type': 'application/json' } } }),
        input(t),
        input(t, { callbackUrl: OTHER_HOOK }),
      ]);
      assert.equal(res.length, 3);
      assert.ok(res.every((r) => r.duplicate === false));
      assert.ok(res[0].eventId < res[1].eventId && res[1].eventId < res[2].eventId, 'ids ascend in input order');
      const ev = await store.getEvent(t.org.id, res[0].eventId);
      assert.ok(ev);
      assert.deepEqual(
        { ...ev, createdDate: null },
        {
          id: res[0].eventId,
          organizationId: t.org.id,
          instanceId: t.instance.id,
          userId: t.user.id,
          createdDate: null,
          status: 'DISPATCHED',
          execution: 'dispatched',
          statusCode: null,
          method: 'POST',
          url: '/elements/api-v2/hubs/documents/folders',
          callbackUrl: HOOK,
          startedDate: null,
          finishedDate: null,
          response: null,
          progress: null,
          notification: null,
          deliveries: [],
        },
      );
      assert.ok(ev.createdDate.getTime() >= before - 1000 && ev.createdDate.getTime() <= Date.now() + 1000);
      assert.equal((await store.getEvent(t.org.id, res[2].eventId))?.callbackUrl, OTHER_HOOK);
      assert.deepEqual(await store.acceptEvents([]), []);
      const counts = await store.asyncCounts();
      assert.equal(counts.jobs, 3);
      assert.equal(counts.events, 3);
    });

    test('acceptEvents: idempotency keys per instance', async (store) => {
      const t = await tenant(store);
      const second = await addInstance(store, t, 'second');
      const [first] = await store.acceptEvents([input(t, { idempotencyKey: 'k1' })]);
      assert.equal(first.duplicate, false);
      const again = await store.acceptEvents([input(t, { idempotencyKey: 'k1' }), input(t, { idempotencyKey: 'k2' })]);
      assert.deepEqual(again[0], { eventId: first.eventId, duplicate: true });
      assert.equal(again[1].duplicate, false);
      const elsewhere = await store.acceptEvents([input({ ...t, instance: second }, { idempotencyKey: 'k1' })]);
      assert.equal(elsewhere[0].duplicate, false, 'the same key on another instance is another request');
      assert.notEqual(elsewhere[0].eventId, first.eventId);
      // The same key twice in one batch: the second follows the first.
      const batch = await store.acceptEvents([input(t, { idempotencyKey: 'k3' }), input(t), input(t, { idempotencyKey: 'k3' })]);
      assert.equal(batch[0].duplicate, false);
      assert.equal(batch[1].duplicate, false);
      assert.deepEqual(batch[2], { eventId: batch[0].eventId, duplicate: true });
      assert.equal((await store.asyncCounts()).events, 5, 'duplicates store nothing');
    });

    test('acceptEvents: concurrent accepts of one idempotency key make one event', async (store) => {
      const t = await tenant(store);
      const res = (await Promise.all(Array.from({ length: 8 }, () => store.acceptEvents([input(t, { idempotencyKey: 'same' })])))).flat();
      assert.equal(new Set(res.map((r) => r.eventId)).size, 1);
      assert.equal(res.filter((r) => !r.duplicate).length, 1);
      assert.equal((await store.asyncCounts()).events, 1);
    });

    test('purgeExpired: forgotten idempotency keys accept anew', async (store) => {
      const t = await tenant(store);
      const [first] = await store.acceptEvents([input(t, { idempotencyKey: 'k' })]);
      await store.purgeExpired(new Date(), new Date(Date.now() - 3_600_000));
      assert.deepEqual((await store.acceptEvents([input(t, { idempotencyKey: 'k' })]))[0], { eventId: first.eventId, duplicate: true });
      await store.purgeExpired(new Date(), new Date(Date.now() + 1000));
      const [fresh] = await store.acceptEvents([input(t, { idempotencyKey: 'k' })]);
      assert.equal(fresh.duplicate, false);
      assert.notEqual(fresh.eventId, first.eventId);
    });

    // ---- job journal and spooled bodies (issue 25) ---------------------------------------------------

    test('job journal: entries are kept per event and key, replaced, and forgotten once the job is done', async (store) => {
      const t = await tenant(store);
      const [a, b] = await accept(store, t, 2);
      assert.equal(await store.journalGet(a, 'copy:/x'), null);
      await store.journalPut(a, 'copy:/x', '{"from":"/s"}');
      await store.journalPut(b, 'copy:/x', '{"from":"/other"}');
      await store.journalPut(a, 'copy:/x', '{"from":"/s2"}');
      assert.equal(await store.journalGet(a, 'copy:/x'), '{"from":"/s2"}');
      assert.equal(await store.journalGet(b, 'copy:/x'), '{"from":"/other"}');
      assert.equal(await store.journalGet(a, 'upload:/x'), null);
      await store.claimJobs('runner', 100, LONG, 100);
      await store.completeJobs('runner', [outcome(a)]);
      await store.purgeExpired(new Date(), new Date(0));
      assert.equal(await store.journalGet(a, 'copy:/x'), null, 'a finished job forgets its journal');
      assert.equal(await store.journalGet(b, 'copy:/x'), '{"from":"/other"}', 'a running job keeps its journal');
    });

    test('spooledJobFiles: the spool files of waiting and running jobs, not of finished ones', async (store) => {
      const t = await tenant(store);
      const upload = (file: string) =>
        input(t, { request: { method: 'POST', url: '/elements/api-v2/hubs/documents/files?path=/a', headers: {}, spool: { file, size: 10 } } });
      const [a, b] = (await store.acceptEvents([upload('a'.repeat(32) + '.body'), upload('b'.repeat(32) + '.body'), input(t)])).map((r) => r.eventId);
      assert.deepEqual((await store.spooledJobFiles()).sort(), ['a'.repeat(32) + '.body', 'b'.repeat(32) + '.body']);
      const claimed = await store.claimJobs('runner', 100, LONG, 100);
      assert.deepEqual(claimed.find((j) => j.eventId === a)?.request.spool, { file: 'a'.repeat(32) + '.body', size: 10 });
      await store.completeJobs('runner', [outcome(b)]);
      assert.deepEqual(await store.spooledJobFiles(), ['a'.repeat(32) + '.body']);
    });

    // ---- jobs ----------------------------------------------------------------------------------------

    test('claimJobs: leases the captured request and body, oldest first', async (store) => {
      const t = await tenant(store);
      const small = Buffer.from('hello\u0000world');
      const big = crypto.randomBytes(300 * 1024);
      const request = { method: 'POST', url: '/elements/api-v2/hubs/documents/files?path=%2Fa.bin', headers: { 'content-type': 'multipart/form-data; boundary=x', 'x-ünï': 'ok' } };
      const ids = (
        await store.acceptEvents([input(t, { request, body: small }), input(t, { body: big }), input(t), input(t, { body: Buffer.alloc(0) })])
      ).map((r) => r.eventId);
      const claimed = await store.claimJobs('runner-1', 3, LONG, 10);
      assert.deepEqual(claimed.map((j) => j.eventId), ids.slice(0, 3));
      assert.deepEqual(claimed[0], {
        eventId: ids[0],
        organizationId: t.org.id,
        userId: t.user.id,
        instanceId: t.instance.id,
        request,
        body: small,
        attempts: 0,
      });
      assert.ok(claimed[1].body?.equals(big), 'a large body round-trips');
      assert.equal(claimed[2].body, null);
      const ev = await store.getEvent(t.org.id, ids[0]);
      assert.equal(ev?.execution, 'running');
      assert.equal(ev?.status, 'DISPATCHED');
      assert.ok(ev?.startedDate instanceof Date);
      const rest = await store.claimJobs('runner-2', 10, LONG, 10);
      assert.deepEqual(rest.map((j) => j.eventId), [ids[3]], 'leased jobs are not claimed again');
      assert.equal(rest[0].body?.length, 0);
      assert.deepEqual(await store.claimJobs('runner-2', 10, LONG, 10), []);
    });

    test('claimJobs: an expired lease is taken over, attempts counted', async (store) => {
      const t = await tenant(store);
      const [id] = await accept(store, t);
      assert.equal((await store.claimJobs('dead-runner', 10, 100, 10))[0].attempts, 0);
      await sleep(250);
      const taken = await store.claimJobs('runner-2', 10, LONG, 10);
      assert.deepEqual(taken.map((j) => [j.eventId, j.attempts]), [[id, 1]]);
      assert.deepEqual(await store.claimJobs('runner-3', 10, LONG, 10), []);
    });

    test('claimJobs: at most perInstance leased jobs per instance, counting running ones', async (store) => {
      const t = await tenant(store);
      const other = { ...t, instance: await addInstance(store, t, 'other') };
      const a = await accept(store, t, 5);
      const b = await accept(store, other, 2);
      const first = await store.claimJobs('r1', 10, LONG, 2);
      assert.deepEqual(first.map((j) => j.eventId).sort((x, y) => x - y), [a[0], a[1], b[0], b[1]]);
      assert.deepEqual(await store.claimJobs('r2', 10, LONG, 2), [], 'instance a already runs 2');
      await store.completeJobs('r1', [outcome(a[0])]);
      assert.deepEqual((await store.claimJobs('r2', 10, LONG, 2)).map((j) => j.eventId), [a[2]]);
      assert.deepEqual((await store.claimJobs('r2', 10, LONG, 3)).map((j) => j.eventId), [a[3]], 'the limit is per call');
      assert.deepEqual(await store.claimJobs('r2', 0, LONG, 3), []);
    });

    test('claimJobs: limit holds and the rest stays claimable', async (store) => {
      const t = await tenant(store);
      const ids = await accept(store, t, 7);
      const got: number[] = [];
      for (let i = 0; i < 3; i++) got.push(...(await store.claimJobs('r', 3, LONG, 100)).map((j) => j.eventId));
      assert.deepEqual(got, ids);
    });

    test("claimJobs: a saturated instance's backlog does not hide other instances' jobs", async (store) => {
      const t = await tenant(store);
      const other = { ...t, instance: await addInstance(store, t, 'other') };
      const backlog = await accept(store, t, 1000);
      const [late] = await accept(store, other, 1);
      const first = await store.claimJobs('r', 10, LONG, 1);
      assert.deepEqual(first.map((j) => j.eventId), [backlog[0], late]);
      assert.deepEqual(await store.claimJobs('r', 10, LONG, 1), [], 'both instances are at their limit');
      await store.completeJobs('r', [outcome(backlog[0])]);
      assert.deepEqual((await store.claimJobs('r', 10, LONG, 1)).map((j) => j.eventId), [backlog[1]]);
    });

    test('renewLeases: extends only the owner’s leases', async (store) => {
      const t = await tenant(store);
      const [mine, theirs] = await accept(store, t, 2);
      await store.claimJobs('me', 1, 300, 10);
      await store.claimJobs('them', 1, 300, 10);
      await store.renewLeases('me', [mine, theirs], LONG);
      await store.renewLeases('me', [], LONG);
      await sleep(450);
      const taken = await store.claimJobs('new', 10, LONG, 10);
      assert.deepEqual(taken.map((j) => j.eventId), [theirs], 'only the lease "me" held was renewed');
    });

    test('releaseAllLeases: single-process stores release, shared stores keep live leases', async (store) => {
      const t = await tenant(store);
      const [id] = await accept(store, t);
      await store.claimJobs('old-process', 10, LONG, 10);
      const released = await store.releaseAllLeases();
      const again = await store.claimJobs('new-process', 10, LONG, 10);
      if (store.capabilities.shared) {
        assert.equal(released, 0);
        assert.deepEqual(again, [], 'another live node may hold the lease');
      } else {
        assert.equal(released, 1);
        assert.deepEqual(again.map((j) => [j.eventId, j.attempts]), [[id, 1]]);
      }
    });

    test('completeJobs: stores the outcome, deletes the job, creates the notification once', async (store) => {
      const t = await tenant(store);
      const [ok, bad] = await accept(store, t, 2);
      await store.claimJobs('r', 10, LONG, 10);
      const o1 = outcome(ok, { response: { events: [{ path: '/a' }] } });
      const o2 = outcome(bad, { execution: 'failed', statusCode: 502, response: { message: 'backend down' } });
      await store.completeJobs('r', [o1, o2]);
      assert.equal(o1.built.length, 1);
      const ev = await store.getEvent(t.org.id, ok);
      assert.ok(ev?.notification);
      assert.equal(ev.status, 'CONSUMED');
      assert.equal(ev.execution, 'completed');
      assert.equal(ev.statusCode, 200);
      assert.deepEqual(ev.response, { events: [{ path: '/a' }] });
      assert.ok(ev.finishedDate instanceof Date);
      assert.equal(ev.notification.id, o1.built[0]);
      assert.equal(JSON.parse(ev.notification.body).notificationId, ev.notification.id, 'the body carries its own id');
      assert.equal(ev.notification.status, 'created');
      assert.equal(ev.notification.attempts, 0);
      assert.ok(ev.notification.nextAttemptDate instanceof Date);
      const failed = await store.getEvent(t.org.id, bad);
      assert.deepEqual([failed?.status, failed?.execution, failed?.statusCode, failed?.response], ['CONSUMED', 'failed', 502, { message: 'backend down' }]);
      assert.notEqual(failed?.notification?.id, ev.notification.id);
      assert.deepEqual(await store.asyncCounts(), { jobs: 0, events: 2, notificationsPending: 2 });

      // A second completion (a job taken over after its lease expired) changes nothing.
      const late = outcome(ok, { execution: 'failed', statusCode: 500, response: 'late' });
      await store.completeJobs('other', [late]);
      assert.deepEqual(late.built, []);
      assert.deepEqual(await store.getEvent(t.org.id, ok), ev);
      await store.completeJobs('r', []);
    });

    test('completeJobs: the first outcome of an event in a batch wins', async (store) => {
      const t = await tenant(store);
      const [id] = await accept(store, t);
      await store.claimJobs('r', 10, LONG, 10);
      await store.completeJobs('r', [outcome(id, { statusCode: 201 }), outcome(id, { statusCode: 500, execution: 'failed' })]);
      const ev = await store.getEvent(t.org.id, id);
      assert.deepEqual([ev?.execution, ev?.statusCode], ['completed', 201]);
    });

    test('getResult: stored results by organization until they expire', async (store) => {
      const a = await tenant(store, 'a');
      const b = await tenant(store, 'b');
      const data = crypto.randomBytes(70_000);
      const kept = await finished(store, a, {}, { result: { contentType: 'application/pdf', data, expiresAt: new Date(Date.now() + LONG) } });
      const gone = await finished(store, a, {}, { result: { contentType: 'text/plain', data: Buffer.from('x'), expiresAt: new Date(Date.now() - 1) } });
      const result = await store.getResult(a.org.id, kept);
      assert.equal(result?.contentType, 'application/pdf');
      assert.ok(result?.data.equals(data));
      assert.ok(Math.abs(result!.expiresAt.getTime() - (Date.now() + LONG)) < 5000);
      assert.equal(await store.getResult(b.org.id, kept), null, 'other organizations never see it');
      assert.equal(await store.getResult(a.org.id, gone), null, 'expired');
      assert.equal(await store.getResult(a.org.id, kept + 1000), null);
      await store.purgeExpired(new Date(Date.now() + 2 * LONG), new Date(0));
      assert.equal(await store.getResult(a.org.id, kept), null, 'purged');
    });

    // ---- handoff ---------------------------------------------------------------------------

    /** A handoff that takes the first `room` offers and records every offer. */
    function handoff<T>(owner: string, room: number, leaseMs = LONG): Handoff<T> & { offers: T[] } {
      const offers: T[] = [];
      return {
        owner,
        leaseMs,
        offers,
        take(item: T) {
          offers.push(item);
          return offers.length <= room;
        },
      };
    }

    test('acceptEvents with a handoff: taken jobs are leased and running, the rest wait for a claim', async (store) => {
      const t = await tenant(store);
      const [known] = await store.acceptEvents([input(t, { idempotencyKey: 'k' })]);
      const h = handoff<AcceptInput>('runner-h', 2);
      const res = await store.acceptEvents([input(t), input(t, { idempotencyKey: 'new-key' }), input(t, { body: Buffer.from('b') }), input(t), input(t, { idempotencyKey: 'k' })], h);
      assert.equal(res[4].eventId, known.eventId);
      assert.equal(res[4].job, undefined, 'a duplicate is never handed off');
      const handed = res.filter((r) => r.job);
      if (!store.capabilities.handsOffJobs) {
        assert.deepEqual(handed, []);
        return;
      }
      // A keyed request is handed off like any other (issue 21); a store that learns a key is
      // known only when it writes (PostgreSQL) may also ask for the duplicate, and gives it back.
      assert.ok(h.offers.length === 4 || h.offers.length === 5, 'take is asked once per input at most');
      assert.equal(res[1].job?.eventId, res[1].eventId, 'a new keyed request is handed off');
      assert.deepEqual(handed.map((r) => r.eventId), [res[0].eventId, res[1].eventId]);
      const [withBody] = await store.acceptEvents([input(t, { body: Buffer.from('b') })], handoff<AcceptInput>('runner-h', 1));
      assert.deepEqual(withBody.job, {
        eventId: withBody.eventId,
        organizationId: t.org.id,
        userId: t.user.id,
        instanceId: t.instance.id,
        request: input(t).request,
        body: Buffer.from('b'),
        attempts: 0,
      });
      const ev = await store.getEvent(t.org.id, res[0].eventId);
      assert.equal(ev?.execution, 'running');
      assert.ok(ev?.startedDate instanceof Date);
      assert.equal((await store.getEvent(t.org.id, res[3].eventId))?.execution, 'dispatched');
      const claimed = await store.claimJobs('other', 10, LONG, 10);
      assert.deepEqual(
        claimed.map((j) => j.eventId).sort((a, b) => a - b),
        [known.eventId, res[2].eventId, res[3].eventId],
        'handed-off jobs are leased',
      );
      assert.deepEqual(await store.claimJobs('other', 10, LONG, 6), [], 'they count against the instance limit');
      await store.completeJobs('runner-h', [outcome(res[0].eventId)]);
      assert.equal((await store.getEvent(t.org.id, res[0].eventId))?.execution, 'completed');
    });

    test('acceptEvents with a handoff: the lease expires like a claim’s', async (store) => {
      if (!store.capabilities.handsOffJobs) return;
      const t = await tenant(store);
      const [a] = await store.acceptEvents([input(t)], handoff<AcceptInput>('dead-runner', 1, 100));
      assert.ok(a.job);
      assert.deepEqual(await store.claimJobs('r', 10, LONG, 10), []);
      await sleep(250);
      assert.deepEqual((await store.claimJobs('r', 10, LONG, 10)).map((j) => [j.eventId, j.attempts]), [[a.eventId, 1]]);
    });

    test('completeJobs with a handoff: taken notifications are leased and returned, queued ones never offered', async (store) => {
      const t = await tenant(store);
      const ids = await accept(store, t, 4);
      await store.acceptEvents([input(t, { callbackUrl: OTHER_HOOK })]);
      await store.claimJobs('r', 10, LONG, 10);
      const h = handoff<NotificationOffer>('sender-h', 1);
      const due = await store.completeJobs('r', [outcome(ids[0]), outcome(ids[1], { queue: true }), outcome(ids[2])], h);
      assert.equal(h.offers.length, 2, 'the queued notification is not offered');
      assert.deepEqual(h.offers.map((o) => [o.organizationId, o.url]), [
        [t.org.id, HOOK],
        [t.org.id, HOOK],
      ]);
      assert.equal(due.length, 1);
      const ev = await store.getEvent(t.org.id, ids[0]);
      assert.deepEqual(
        { ...due[0], createdDate: null, acceptedDate: null },
        {
          acceptedDate: null,
          traceparent: null,
          tracestate: null,
          notificationId: ev!.notification!.id,
          eventId: ids[0],
          organizationId: t.org.id,
          instanceId: t.instance.id,
          subscriptionId: h.offers[0].subscriptionId,
          url: HOOK,
          body: ev!.notification!.body,
          attempts: 0,
          createdDate: null,
        },
      );
      assert.ok(due[0].createdDate instanceof Date);
      assert.equal(due[0].acceptedDate?.getTime(), ev!.createdDate.getTime(), 'handed off with the event\'s acceptance time');
      assert.equal(JSON.parse(due[0].body).notificationId, due[0].notificationId);
      const claimed = await store.claimNotifications('other', 10, LONG);
      assert.deepEqual(claimed.map((n) => n.eventId), [ids[2]], 'the handed-off one is leased; the refused one is due');
      await store.recordDeliveries([record(due[0].notificationId, HOOK, { status: 'delivered' })]);
      assert.equal((await store.getEvent(t.org.id, ids[0]))?.status, 'NOTIFIED');
      // A late second completion creates nothing and offers nothing.
      const late = handoff<NotificationOffer>('sender-h', 10);
      assert.deepEqual(await store.completeJobs('r', [outcome(ids[0])], late), []);
      assert.deepEqual(late.offers, []);
    });

    // ---- notifications -----------------------------------------------------------------------------

    test('claimNotifications / recordDeliveries: delivered notifies the event', async (store) => {
      const t = await tenant(store);
      const id = await finished(store, t);
      const due = await store.claimNotifications('s', 10, LONG);
      assert.equal(due.length, 1);
      const n = due[0];
      const ev0 = await store.getEvent(t.org.id, id);
      assert.deepEqual(
        { ...n, createdDate: null, acceptedDate: null },
        {
          acceptedDate: null,
          traceparent: null,
          tracestate: null,
          notificationId: ev0!.notification!.id,
          eventId: id,
          organizationId: t.org.id,
          instanceId: t.instance.id,
          subscriptionId: n.subscriptionId,
          url: HOOK,
          body: ev0!.notification!.body,
          attempts: 0,
          createdDate: null,
        },
      );
      assert.ok(n.createdDate instanceof Date);
      assert.equal(n.acceptedDate?.getTime(), ev0!.createdDate.getTime(), 'claimed with the event\'s acceptance time');
      assert.deepEqual(await store.claimNotifications('s2', 10, LONG), [], 'leased');
      const at = new Date(Date.now() - 50);
      await store.recordDeliveries([{ notificationId: n.notificationId, url: HOOK, at, durationMs: 49.6, statusCode: 204, error: null, next: { status: 'delivered' } }]);
      const ev = await store.getEvent(t.org.id, id);
      assert.equal(ev?.status, 'NOTIFIED');
      assert.deepEqual([ev?.notification?.status, ev?.notification?.attempts, ev?.notification?.nextAttemptDate], ['delivered', 1, null]);
      assert.deepEqual(ev?.deliveries, [{ at, url: HOOK, statusCode: 204, error: null, durationMs: 50 }]);
      assert.equal(await store.nextNotificationDue(), null);
      assert.equal((await store.asyncCounts()).notificationsPending, 0);
      assert.deepEqual(await store.claimNotifications('s', 10, LONG), []);
    });

    test('completeJobs keeps the trace context with the notification, claimed or handed off', async (store) => {
      const t = await tenant(store);
      const ids = await accept(store, t, 2);
      await store.claimJobs('r', 10, LONG, 10);
      const trace = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=1' };
      const h = handoff<NotificationOffer>('sender-h', 1);
      const [handed] = await store.completeJobs('r', [outcome(ids[0], { trace }), outcome(ids[1], { trace: { traceparent: trace.traceparent } })], h);
      assert.deepEqual([handed.traceparent, handed.tracestate], [trace.traceparent, trace.tracestate]);
      const [claimed] = await store.claimNotifications('s', 10, LONG);
      assert.equal(claimed.eventId, ids[1]);
      assert.deepEqual([claimed.traceparent, claimed.tracestate], [trace.traceparent, null]);
    });

    test('operations: schema status, operational counts, lease release', async (store) => {
      const status = await store.schemaStatus();
      assert.ok(status.required > 0);
      assert.equal(status.applied, status.required, 'migrated to the version this Ferry needs');
      const t = await tenant(store);
      const before = await store.operationalCounts();
      const ids = await accept(store, t, 3);
      const counts = await store.operationalCounts();
      assert.equal(counts.pending - before.pending, 3);
      assert.ok(counts.oldestPendingDate instanceof Date && counts.oldestPendingDate.getTime() <= Date.now());
      const jobs = await store.claimJobs('r', 10, LONG, 10);
      const mine = jobs.filter((j) => ids.includes(j.eventId)).map((j) => j.eventId);
      assert.equal(mine.length, 3);
      const leased = await store.operationalCounts();
      assert.equal(leased.running - before.running, 3);
      // Released by its owner: claimable at once, long before the lease would expire.
      await store.releaseLeases('someone-else', [mine[0]], []);
      assert.deepEqual(await store.claimJobs('r2', 10, LONG, 10), [], 'only the owner releases');
      await store.releaseLeases('r', [mine[0], mine[1]], []);
      assert.deepEqual((await store.claimJobs('r2', 10, LONG, 10)).map((j) => j.eventId).sort(), [mine[0], mine[1]].sort());
      // Notifications: queued and retry counts, and release of a leased one.
      await store.completeJobs('r', [outcome(mine[2], { queue: true })]);
      assert.equal((await store.operationalCounts()).notificationsQueued - before.notificationsQueued, 1);
      const id = await finished(store, t);
      const [n] = await store.claimNotifications('s', 10, LONG);
      assert.equal(n.eventId, id);
      await store.releaseLeases('s', [], [n.notificationId]);
      const [again] = await store.claimNotifications('s2', 10, LONG);
      assert.equal(again.notificationId, n.notificationId, 'a released notification is claimable at once');
      await store.recordDeliveries([record(n.notificationId, HOOK, { status: 'retry', at: new Date(Date.now() + LONG) })]);
      assert.equal((await store.operationalCounts()).retryWait - before.retryWait, 1);
    });

    test('recordDeliveries: retry is due later, not before', async (store) => {
      const t = await tenant(store);
      const id = await finished(store, t);
      const [n] = await store.claimNotifications('s', 10, LONG);
      const later = new Date(Date.now() + LONG);
      await store.recordDeliveries([record(n.notificationId, HOOK, { status: 'retry', at: later }, null)]);
      assert.deepEqual(await store.claimNotifications('s', 10, LONG), []);
      assert.equal((await store.nextNotificationDue())?.getTime(), later.getTime());
      const ev = await store.getEvent(t.org.id, id);
      assert.equal(ev?.status, 'CONSUMED');
      assert.deepEqual([ev?.notification?.status, ev?.notification?.attempts], ['retry', 1]);
      assert.equal(ev?.notification?.nextAttemptDate?.getTime(), later.getTime());
      assert.deepEqual(ev?.deliveries.map((d) => [d.statusCode, d.error]), [[null, 'ECONNREFUSED']]);

      const soon = await finished(store, t);
      const [m] = await store.claimNotifications('s', 10, LONG);
      assert.equal(m.eventId, soon);
      await store.recordDeliveries([record(m.notificationId, HOOK, { status: 'retry', at: new Date(Date.now() + 400) }, 503)]);
      assert.deepEqual(await store.claimNotifications('s', 10, LONG), []);
      await sleep(600);
      const retried = await store.claimNotifications('s', 10, LONG);
      assert.deepEqual(retried.map((x) => [x.notificationId, x.attempts]), [[m.notificationId, 1]]);
    });

    test('claimNotifications: an expired lease is claimable again; release gives it back', async (store) => {
      const t = await tenant(store);
      await finished(store, t);
      const [n] = await store.claimNotifications('s', 10, 100);
      assert.ok((await store.nextNotificationDue())!.getTime() > Date.now() - 1000);
      await sleep(250);
      const [again] = await store.claimNotifications('s2', 10, LONG);
      assert.equal(again?.notificationId, n.notificationId);
      assert.ok((await store.nextNotificationDue())!.getTime() > Date.now() + LONG / 2, 'leased: due when the lease ends');
      await store.releaseNotifications([again.notificationId]);
      await store.releaseNotifications([]);
      assert.ok((await store.nextNotificationDue())!.getTime() <= Date.now() + 1000);
      assert.deepEqual((await store.claimNotifications('s3', 10, LONG)).map((x) => x.notificationId), [n.notificationId]);
    });

    test('claimNotifications: oldest due first, limit, excluded subscriptions', async (store) => {
      const t = await tenant(store);
      const first = await finished(store, t);
      const second = await finished(store, t, { callbackUrl: OTHER_HOOK });
      const third = await finished(store, t);
      const [one] = await store.claimNotifications('s', 1, LONG);
      assert.equal(one.eventId, first);
      const hookSub = one.subscriptionId;
      const others = await store.claimNotifications('s', 10, LONG, [hookSub]);
      assert.deepEqual(others.map((n) => [n.eventId, n.url]), [[second, OTHER_HOOK]]);
      assert.notEqual(others[0].subscriptionId, hookSub);
      assert.deepEqual((await store.claimNotifications('s', 10, LONG)).map((n) => n.eventId), [third]);
    });

    test('queued with deactivate: the URL stops, its due notifications queue, redeliver resumes', async (store) => {
      const t = await tenant(store);
      const e1 = await finished(store, t);
      const e2 = await finished(store, t);
      const e3 = await finished(store, t, { callbackUrl: OTHER_HOOK });
      const [n1] = await store.claimNotifications('s', 1, LONG);
      assert.equal(n1.eventId, e1);
      await store.recordDeliveries([record(n1.notificationId, HOOK, { status: 'queued', deactivate: true }, 500)]);
      const status = async (id: number) => (await notificationOf(store, t, id)).status;
      assert.equal(await status(e1), 'queued');
      assert.equal(await status(e2), 'queued', 'other due notifications of the URL queue up');
      assert.equal(await status(e3), 'created', 'other URLs are untouched');
      assert.equal((await notificationOf(store, t, e2)).nextAttemptDate, null);
      assert.deepEqual((await store.claimNotifications('s', 10, LONG)).map((n) => n.eventId), [e3]);
      const e4 = await finished(store, t);
      assert.equal(await status(e4), 'queued', 'new completions to an inactive URL are created queued');
      assert.equal((await store.asyncCounts()).notificationsPending, 1, 'only e3 (leased) is pending');

      const queued = await store.listDeliveries(t.org.id, { status: ['queued'] }, { limit: 10 });
      assert.deepEqual(queued.items.map((d) => d.eventId), [e1, e2, e4]);

      assert.equal(await store.redeliver(t.org.id, { url: HOOK }), 3);
      for (const e of [e1, e2, e4]) assert.equal(await status(e), 'created');
      const resumed = await store.claimNotifications('s', 10, LONG);
      assert.deepEqual(resumed.map((n) => n.eventId).sort((a, b) => a - b), [e1, e2, e4]);
      assert.equal(resumed.find((n) => n.eventId === e1)?.attempts, 0, "a redelivered notification starts a fresh retry schedule");
      const e5 = await finished(store, t);
      assert.equal(await status(e5), 'created', 'the subscription is active again');
      assert.equal(await store.redeliver(t.org.id, { url: HOOK }), 0);
    });

    test('a notification in flight when its subscription is deactivated ends delivered or queued, never lost nor sent twice', async (store) => {
      const t = await tenant(store);
      const e1 = await finished(store, t);
      const e2 = await finished(store, t);
      const e3 = await finished(store, t);
      // All three are in flight (leased) when e3's attempt deactivates the URL (a 410, say).
      const inFlight = await store.claimNotifications('s', 10, LONG);
      assert.deepEqual(inFlight.map((n) => n.eventId), [e1, e2, e3]);
      const id = (e: number) => inFlight.find((n) => n.eventId === e)!.notificationId;
      await store.recordDeliveries([record(id(e3), HOOK, { status: 'queued', deactivate: true }, 410)]);
      // e1's attempt then fails: the URL is inactive, so it is queued, not scheduled for a retry
      // that would be sent while the URL is off (and again when it is redelivered).
      await store.recordDeliveries([record(id(e1), HOOK, { status: 'retry', at: new Date(Date.now() + 1) }, 500)]);
      // e2's attempt had succeeded: delivered stays delivered.
      await store.recordDeliveries([record(id(e2), HOOK, { status: 'delivered' })]);
      const status = async (e: number) => (await notificationOf(store, t, e)).status;
      assert.equal(await status(e1), 'queued');
      assert.equal((await notificationOf(store, t, e1)).nextAttemptDate, null);
      assert.equal(await status(e2), 'delivered');
      assert.equal(await status(e3), 'queued');
      await sleep(5);
      assert.deepEqual(await store.claimNotifications('s', 10, LONG), [], 'nothing is sent while the URL is inactive');
      // Reactivated: the queued ones are sent once each; the delivered one is not sent again.
      assert.equal(await store.redeliver(t.org.id, { url: HOOK }), 2);
      const resumed = await store.claimNotifications('s', 10, LONG);
      assert.deepEqual(resumed.map((n) => n.eventId).sort((a, b) => a - b), [e1, e3]);
      assert.deepEqual(await store.claimNotifications('s', 10, LONG), []);
    });

    test('completeJobs with queue: created queued, never claimed until redelivered', async (store) => {
      const t = await tenant(store);
      const id = await finished(store, t, {}, { queue: true });
      const n = await notificationOf(store, t, id);
      assert.deepEqual([n.status, n.nextAttemptDate], ['queued', null]);
      assert.deepEqual(await store.claimNotifications('s', 10, LONG), []);
      assert.equal(await store.nextNotificationDue(), null);
      assert.equal(await store.redeliver(t.org.id, { status: ['delivered'] }), 0, 'a filter without queued redelivers nothing');
      assert.equal(await store.redeliver(t.org.id, {}), 1);
      assert.deepEqual((await store.claimNotifications('s', 10, LONG)).map((x) => x.eventId), [id]);
    });

    test('redeliverNotification: one failed or queued notification, due at once; others refused', async (store) => {
      const t = await tenant(store);
      const other = await tenant(store, 'other');
      const e1 = await finished(store, t);
      const [n1] = await store.claimNotifications('s', 10, LONG);
      const id = n1.notificationId;
      assert.deepEqual(await store.redeliverNotification(t.org.id, id), { result: 'not_failed', status: 'created' });
      // Failed, next retry in an hour: redelivered now, with a fresh schedule.
      await store.recordDeliveries([record(id, HOOK, { status: 'retry', at: new Date(Date.now() + 3_600_000) }, 500)]);
      assert.deepEqual(await store.redeliverNotification(other.org.id, id), { result: 'not_found' }, 'never across organizations');
      assert.deepEqual(await store.redeliverNotification(t.org.id, 999_999), { result: 'not_found' });
      assert.deepEqual(await store.redeliverNotification(t.org.id, id), { result: 'redelivered' });
      const [again] = await store.claimNotifications('s', 10, LONG);
      assert.deepEqual([again.notificationId, again.attempts], [id, 0]);
      // Failed and due: while a sender holds it, it is in flight.
      await store.recordDeliveries([record(id, HOOK, { status: 'retry', at: new Date() }, 500)]);
      assert.equal((await store.claimNotifications('s', 10, LONG))[0]?.notificationId, id);
      assert.deepEqual(await store.redeliverNotification(t.org.id, id), { result: 'in_flight' });
      // Queued with the URL deactivated: only this notification comes back, and the URL is active again.
      await store.recordDeliveries([record(id, HOOK, { status: 'queued', deactivate: true }, 500)]);
      const e2 = await finished(store, t);
      assert.equal((await notificationOf(store, t, e2)).status, 'queued');
      assert.deepEqual(await store.redeliverNotification(t.org.id, id), { result: 'redelivered' });
      assert.deepEqual((await store.claimNotifications('s', 10, LONG)).map((n) => n.eventId), [e1]);
      assert.equal((await notificationOf(store, t, e2)).status, 'queued', 'the others stay queued');
      assert.equal((await notificationOf(store, t, await finished(store, t))).status, 'created', 'the subscription is active again');
      await store.recordDeliveries([record(id, HOOK, { status: 'delivered' })]);
      assert.deepEqual(await store.redeliverNotification(t.org.id, id), { result: 'not_failed', status: 'delivered' });
    });

    test('redeliver: only the organization’s own subscriptions', async (store) => {
      const a = await tenant(store, 'a');
      const b = await tenant(store, 'b');
      const ea = await finished(store, a);
      const eb = await finished(store, b);
      for (const n of await store.claimNotifications('s', 10, LONG)) {
        await store.recordDeliveries([record(n.notificationId, HOOK, { status: 'queued', deactivate: true }, 410)]);
      }
      assert.equal(await store.redeliver(b.org.id, { url: HOOK }), 1);
      assert.equal((await notificationOf(store, a, ea)).status, 'queued');
      assert.equal((await notificationOf(store, b, eb)).status, 'created');
      assert.equal((await notificationOf(store, a, await finished(store, a))).status, 'queued', "a's subscription stays inactive");
      assert.equal((await notificationOf(store, b, await finished(store, b))).status, 'created');
    });

    test('listDeliveries: filters by status and URL, pages, stays in the organization', async (store) => {
      const a = await tenant(store, 'a');
      const b = await tenant(store, 'b');
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push(await finished(store, a, { callbackUrl: i === 4 ? OTHER_HOOK : HOOK }));
      await finished(store, b);
      const due = await store.claimNotifications('s', 2, LONG);
      await store.recordDeliveries([
        record(due[0].notificationId, HOOK, { status: 'delivered' }),
        record(due[1].notificationId, HOOK, { status: 'retry', at: new Date(Date.now() + LONG) }, 500),
      ]);
      const all = await store.listDeliveries(a.org.id, {}, { limit: 10 });
      assert.deepEqual(all.items.map((d) => d.eventId), ids);
      assert.equal(all.next, null);
      assert.deepEqual(all.items.map((d) => d.status), ['delivered', 'retry', 'created', 'created', 'created']);
      const d0 = all.items[0];
      assert.equal(d0.url, HOOK);
      assert.equal(d0.subscriptionId, due[0].subscriptionId);
      assert.ok(d0.createdDate instanceof Date && d0.updatedDate.getTime() >= d0.createdDate.getTime());

      const byStatus = await store.listDeliveries(a.org.id, { status: ['delivered', 'retry'] }, { limit: 10 });
      assert.deepEqual(byStatus.items.map((d) => d.eventId), ids.slice(0, 2));
      const byUrl = await store.listDeliveries(a.org.id, { url: OTHER_HOOK }, { limit: 10 });
      assert.deepEqual(byUrl.items.map((d) => [d.eventId, d.url]), [[ids[4], OTHER_HOOK]]);
      assert.deepEqual((await store.listDeliveries(a.org.id, { url: HOOK, status: ['created'] }, { limit: 10 })).items.map((d) => d.eventId), ids.slice(2, 4));

      const pages: number[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listDeliveries(a.org.id, {}, { limit: 2, cursor });
        pages.push(page.items.map((d) => d.eventId));
        cursor = page.next ?? undefined;
      } while (cursor);
      assert.deepEqual(pages, [ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
      assert.equal((await store.listDeliveries(b.org.id, {}, { limit: 10 })).items.length, 1);
      await assert.rejects(store.listDeliveries(a.org.id, {}, { limit: 2, cursor: 'garbage!' }), (e) => isFerryError(e, 'invalid'));
    });

    // ---- events --------------------------------------------------------------------------------------

    test('listEvents: newest first, paged, by instance, per organization', async (store) => {
      const a = await tenant(store, 'a');
      const b = await tenant(store, 'b');
      const second = { ...a, instance: await addInstance(store, a, 'second') };
      const ids = await accept(store, a, 3);
      const other = await accept(store, second, 2);
      await accept(store, b, 1);
      const all = [...ids, ...other].sort((x, y) => y - x);
      const pages: number[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listEvents(a.org.id, { limit: 2, cursor });
        pages.push(page.items.map((e) => e.id));
        cursor = page.next ?? undefined;
      } while (cursor);
      assert.deepEqual(pages, [all.slice(0, 2), all.slice(2, 4), all.slice(4)]);
      const exact = await store.listEvents(a.org.id, { limit: 5 });
      assert.equal(exact.next, null, 'no next page when the last page is full');
      assert.deepEqual(
        (await store.listEvents(a.org.id, { instanceId: second.instance.id, limit: 10 })).items.map((e) => e.id),
        [...other].reverse(),
      );
      assert.deepEqual((await store.listEvents(a.org.id, { instanceId: b.instance.id, limit: 10 })).items, []);
      assert.equal((await store.listEvents(b.org.id, { limit: 10 })).items.length, 1);
      assert.equal(await store.getEvent(b.org.id, ids[0]), null, 'other organizations never see it');
      assert.equal(await store.getEvent(a.org.id, 999_999), null);
      await assert.rejects(store.listEvents(a.org.id, { limit: 2, cursor: '%%%' }), (e) => isFerryError(e, 'invalid'));
    });

    test('listEvents: events carry their notification and delivery attempts', async (store) => {
      const t = await tenant(store);
      const id = await finished(store, t);
      const [n] = await store.claimNotifications('s', 10, LONG);
      await store.recordDeliveries([record(n.notificationId, HOOK, { status: 'retry', at: new Date() }, 500)]);
      const [again] = await store.claimNotifications('s', 10, LONG);
      await store.recordDeliveries([record(again.notificationId, HOOK, { status: 'delivered' }, 200)]);
      const [ev] = (await store.listEvents(t.org.id, { limit: 1 })).items;
      assert.equal(ev.id, id);
      assert.equal(ev.status, 'NOTIFIED');
      assert.deepEqual(ev.deliveries.map((d) => d.statusCode), [500, 200], 'attempts in order');
      assert.equal(ev.notification?.attempts, 2);
      assert.deepEqual(await store.getEvent(t.org.id, id), ev);
    });

    test('listEvents: filtered by status, alone and with the instance, paged', async (store) => {
      const t = await tenant(store);
      const other = { ...t, instance: await addInstance(store, t, 'other') };
      const consumed = [await finished(store, t), await finished(store, other)];
      const dispatched = await accept(store, t, 2);
      const status = async (s: 'DISPATCHED' | 'CONSUMED' | 'NOTIFIED', instanceId?: number) =>
        (await store.listEvents(t.org.id, { status: s, instanceId, limit: 10 })).items.map((e) => e.id);
      assert.deepEqual(await status('DISPATCHED'), [...dispatched].reverse());
      assert.deepEqual(await status('CONSUMED'), [...consumed].reverse());
      assert.deepEqual(await status('CONSUMED', other.instance.id), [consumed[1]]);
      assert.deepEqual(await status('NOTIFIED'), []);
      const first = await store.listEvents(t.org.id, { status: 'DISPATCHED', limit: 1 });
      assert.ok(first.next);
      const second = await store.listEvents(t.org.id, { status: 'DISPATCHED', limit: 1, cursor: first.next! });
      assert.deepEqual([...first.items, ...second.items].map((e) => e.id), [...dispatched].reverse());
      assert.equal(second.next, null);
    });

    // ---- progress and cancellation (issue 16) --------------------------------------------------

    const cancelled = (id: number) => outcome(id, { execution: 'cancelled', statusCode: 409, response: { events: [] } });

    test('cancelEvent: a waiting job is completed as cancelled at once, with its notification, and never claimed', async (store) => {
      const t = await tenant(store);
      const [id] = await accept(store, t);
      const answer = await store.cancelEvent(t.org.id, id, () => cancelled(id));
      assert.deepEqual(answer, { before: 'dispatched', after: 'cancelled' });
      assert.deepEqual(await store.claimJobs('r', 10, LONG, 10), [], 'nothing left to run');
      const ev = await store.getEvent(t.org.id, id);
      assert.equal(ev?.execution, 'cancelled');
      assert.equal(ev?.status, 'CONSUMED');
      assert.equal(ev?.statusCode, 409);
      assert.equal(ev?.notification?.status, 'created');
      assert.equal((await store.claimNotifications('s', 10, LONG)).length, 1, 'its webhook is due');
      assert.deepEqual(await store.cancelEvent(t.org.id, id, () => cancelled(id)), { before: 'cancelled', after: 'cancelled' }, 'a second cancel changes nothing');
    });

    test('cancelEvent: a waiting upload is answered with its spooled body (for the caller to delete); a running one is not', async (store) => {
      const t = await tenant(store);
      const body = (c: string) => ({ file: c.repeat(32) + '.body', size: 10 });
      const upload = (c: string) => input(t, { request: { method: 'POST', url: '/elements/api-v2/hubs/documents/files?path=/a', headers: {}, spool: body(c) } });
      const [running] = (await store.acceptEvents([upload('c')])).map((r) => r.eventId);
      assert.equal((await store.claimJobs('r', 10, LONG, 10)).length, 1);
      const [waiting] = (await store.acceptEvents([upload('d')])).map((r) => r.eventId);
      assert.deepEqual(await store.cancelEvent(t.org.id, waiting, () => cancelled(waiting)), { before: 'dispatched', after: 'cancelled', spool: body('d') });
      assert.deepEqual(await store.cancelEvent(t.org.id, running, () => cancelled(running)), { before: 'running', after: 'cancelling' });
      assert.deepEqual(await store.spooledJobFiles(), [body('c').file], 'the running upload still needs its body');
    });

    test("cancelEvent: a running job's event becomes cancelling; cancelledAmong finds it; a takeover claims it flagged cancelled", async (store) => {
      const t = await tenant(store);
      const [id, other] = await accept(store, t, 2);
      await store.claimJobs('dying-runner', 10, 200, 10);
      assert.deepEqual(await store.cancelEvent(t.org.id, id, () => cancelled(id)), { before: 'running', after: 'cancelling' });
      assert.deepEqual(await store.cancelEvent(t.org.id, id, () => cancelled(id)), { before: 'cancelling', after: 'cancelling' });
      assert.equal((await store.getEvent(t.org.id, id))?.execution, 'cancelling');
      assert.deepEqual(await store.cancelledAmong([id, other]), [id]);
      assert.deepEqual(await store.cancelledAmong([]), []);
      await sleep(300);
      const taken = await store.claimJobs('runner-2', 10, LONG, 10);
      assert.deepEqual(taken.map((j) => [j.eventId, j.cancelled === true]).sort(), [[id, true], [other, false]]);
      await store.completeJobs('runner-2', [cancelled(id)]);
      assert.equal((await store.getEvent(t.org.id, id))?.execution, 'cancelled');
    });

    test('cancelEvent: a finished event is left as it is; another organization’s or an unknown one is null', async (store) => {
      const t = await tenant(store);
      const stranger = await tenant(store, 'b');
      const id = await finished(store, t);
      assert.deepEqual(await store.cancelEvent(t.org.id, id, () => cancelled(id)), { before: 'completed', after: 'completed' });
      assert.equal((await store.getEvent(t.org.id, id))?.execution, 'completed');
      assert.equal(await store.cancelEvent(stranger.org.id, id, () => cancelled(id)), null);
      assert.equal(await store.cancelEvent(t.org.id, 987_654, () => cancelled(987_654)), null);
    });

    test('recordProgress: stored while the job runs, shown with the event, replaced by the outcome’s figures', async (store) => {
      const t = await tenant(store);
      const [id] = await accept(store, t);
      assert.equal((await store.getEvent(t.org.id, id))?.progress, null);
      await store.claimJobs('r', 10, LONG, 10);
      await store.recordProgress(id, { itemsDone: 3, itemsTotal: 10, bytesDone: 300, bytesTotal: null });
      assert.deepEqual((await store.getEvent(t.org.id, id))?.progress, { itemsDone: 3, itemsTotal: 10, bytesDone: 300, bytesTotal: null });
      const final = { itemsDone: 10, itemsTotal: 10, bytesDone: 1000, bytesTotal: 1000 };
      await store.completeJobs('r', [outcome(id, { progress: final })]);
      assert.deepEqual((await store.getEvent(t.org.id, id))?.progress, final);
      await store.recordProgress(id, { itemsDone: 4, itemsTotal: 10, bytesDone: 400, bytesTotal: null });
      assert.deepEqual((await store.getEvent(t.org.id, id))?.progress, final, 'a late progress write does not touch a finished event');
    });

    test('asyncCounts: jobs, events and pending notifications', async (store) => {
      const t = await tenant(store);
      assert.deepEqual(await store.asyncCounts(), { jobs: 0, events: 0, notificationsPending: 0 });
      await accept(store, t, 2);
      assert.deepEqual(await store.asyncCounts(), { jobs: 2, events: 2, notificationsPending: 0 });
      await finished(store, t);
      assert.deepEqual(await store.asyncCounts(), { jobs: 2, events: 3, notificationsPending: 1 }, 'the finished job is gone');
    });

    // ---- change polling (store/changes.ts) -----------------------------------------------------

    const schedule = (t: Tenant, watch = '{"path":"/","recursive":true}') =>
      ({ instanceId: t.instance.id, organizationId: t.org.id, intervalMs: 60_000, watch });
    const slice = (t: Tenant, over: Record<string, unknown> = {}) => ({
      organizationId: t.org.id,
      userId: t.user.id,
      callbackUrl: HOOK,
      url: 'polling:/',
      upserts: [],
      deletes: [],
      notifications: [],
      ...over,
    });

    test('change polls: a due schedule is leased to one poller; the holder keeps it past the next due time', async (store) => {
      const t = await tenant(store);
      await store.schedulePolls(schedule(t));
      const [mine] = await store.claimPolls('a', 10, LONG, []);
      assert.equal(mine.instanceId, t.instance.id);
      assert.equal(mine.baselined, false);
      assert.deepEqual(await store.claimPolls('b', 10, LONG, []), [], 'leased to a');
      assert.equal(await store.recordPoll('b', t.instance.id, slice(t)), null, 'b holds no lease: nothing written');
      const next = new Date(Date.now() + 1000);
      assert.deepEqual(await store.recordPoll('a', t.instance.id, slice(t, { finish: { nextPollAt: next, leaseMs: LONG } })), {
        eventIds: [],
        snapshotVersion: mine.snapshotVersion,
      }, 'no snapshot write: same version');
      assert.deepEqual(await store.claimPolls('a', 10, LONG, []), [], 'not due yet');
      const dueA = (await store.nextPollDue('a', []))!.getTime();
      const dueB = (await store.nextPollDue('b', []))!.getTime();
      assert.ok(Math.abs(dueA - next.getTime()) < 500, 'the holder looks again when the poll is due');
      assert.ok(dueB >= next.getTime() + LONG - 500, 'another poller only when the lease expires');
      assert.equal(await store.nextPollDue('a', [t.instance.id]), null, 'excluded schedules are left out');
      await sleep(1100);
      const [again] = await store.claimPolls('a', 10, LONG, []);
      assert.equal(again.baselined, true);
      assert.deepEqual(await store.claimPolls('a', 10, LONG, [t.instance.id]), [], 'polls running are excluded');
    });

    test('change polls: an expired lease is taken over, and the old holder can no longer write', async (store) => {
      const t = await tenant(store);
      await store.schedulePolls(schedule(t));
      assert.equal((await store.claimPolls('a', 10, 50, [])).length, 1);
      await sleep(120);
      assert.equal((await store.claimPolls('b', 10, LONG, [])).length, 1);
      assert.equal(await store.recordPoll('a', t.instance.id, slice(t)), null);
      await store.releasePolls('b');
      assert.equal((await store.claimPolls('c', 10, LONG, [])).length, 1, 'released leases are free at once');
    });

    test('change polls: one slice writes snapshot rows and its notifications as events; a new watch starts a new baseline', async (store) => {
      const t = await tenant(store);
      await store.schedulePolls(schedule(t));
      await store.claimPolls('a', 10, LONG, []);
      const upserts = Array.from({ length: 5 }, (_, i) => ({ path: `/f${i}`, directory: false, fingerprint: `v${i}` }));
      const recorded = await store.recordPoll('a', t.instance.id, slice(t, {
        upserts,
        notifications: [{ body: (id: number) => JSON.stringify({ message: { eventId: id } }), response: { events: [] } }],
      }));
      const ids = recorded?.eventIds;
      const [claimed] = await store.claimPolls('a', 10, LONG, []);
      assert.equal(recorded?.snapshotVersion, claimed.snapshotVersion);
      assert.equal(ids?.length, 1);
      const page1 = await store.readSnapshot(t.instance.id, null, 3);
      const page2 = await store.readSnapshot(t.instance.id, page1[2].path, 3);
      assert.deepEqual([...page1, ...page2], upserts, 'pages in path order');
      const ev = await store.getEvent(t.org.id, ids![0]);
      assert.equal(ev?.status, 'CONSUMED');
      assert.equal(ev?.method, 'POLL');
      const [n] = await store.claimNotifications('s', 10, LONG);
      assert.equal(n.eventId, ids![0]);
      assert.equal(n.instanceId, t.instance.id);
      assert.deepEqual(JSON.parse(n.body), { message: { eventId: ids![0] } });
      await store.recordDeliveries([record(n.notificationId, HOOK, { status: 'delivered' }, 200)]);
      assert.equal((await store.getEvent(t.org.id, ids![0]))?.status, 'NOTIFIED');

      await store.recordPoll('a', t.instance.id, slice(t, { deletes: ['/f0', '/f1'] }));
      assert.equal((await store.readSnapshot(t.instance.id, null, 100)).length, 3);
      await store.schedulePolls(schedule(t, '{"path":"/other","recursive":true}'));
      assert.deepEqual(await store.readSnapshot(t.instance.id, null, 100), [], 'a new watch forgets the snapshot');
      await store.releasePolls('a');
      const [fresh] = await store.claimPolls('a', 10, LONG, []);
      assert.equal(fresh.baselined, false, 'and records a new baseline');
      assert.ok(fresh.snapshotVersion > claimed.snapshotVersion, 'with a new snapshot version');
      assert.deepEqual(await store.scheduledInstances(), [t.instance.id]);
      await store.unschedulePolls(t.instance.id);
      assert.deepEqual(await store.scheduledInstances(), []);
      assert.equal(await store.nextPollDue('a', []), null);
    });
  });
}
