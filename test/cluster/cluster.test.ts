/**
 * Cluster mode (issue 5, DESIGN §1.5 guarantees, §2 roles): real `ferry serve` processes on one
 * PostgreSQL schema, streams of asynchronous requests spread over the nodes' HTTP ports, and a
 * real webhook receiver that dedupes on `Elements-Webhook-Id`. A test-only trigger records every
 * claim of a job (who, when, how many leases its instance then held), so "runs exactly once
 * while its runner lives" and "per-instance limits hold across nodes" are checked from the
 * database, not guessed from timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PLATFORM_AUTH, USER_SECRET, multipartFile, startReceiver, type Receiver } from '../helpers/server.js';
import { clusterSkipReason, installClaimAudit, pendingFor, startCluster, type Cluster } from '../helpers/cluster.js';

const skip = (await clusterSkipReason()) ?? undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROOT = 'cluster';
/** A node whose claims a test must recognise runs with this FERRY_LEASE (the others 2000 ms). */
const VICTIM_LEASE = 2500;

interface Sent {
  kind: 'ping' | 'upload';
  file?: string;
  content?: string;
}

interface Claim {
  event_id: number;
  instance_id: number;
  owner: string;
  running: number;
  lease_ms: number;
  at_ms: number;
}

/** Creates a localfs instance through `base`; returns its hub Authorization. */
async function createInstance(base: string, name: string): Promise<string> {
  const res = await fetch(`${base}/instances`, {
    method: 'POST',
    headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ element: { key: 'localfs' }, name, configuration: { root: ROOT } }),
  });
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return `User ${USER_SECRET}, Element ${body.token}`;
}

/** Webhooks by eventId, deduplicated on Elements-Webhook-Id as receivers are told to. */
function track(receiver: Receiver) {
  const webhookIds = new Map<number, Set<string>>();
  const bodies = new Map<number, any>();
  receiver.respond = (hook) => {
    const id = String(hook.headers['elements-webhook-id'] ?? '');
    const eventId = hook.body?.eventId;
    if (id && typeof eventId === 'number') {
      let ids = webhookIds.get(eventId);
      if (!ids) webhookIds.set(eventId, (ids = new Set()));
      ids.add(id);
      if (!bodies.has(eventId)) bodies.set(eventId, hook.body);
    }
    return { status: 200 };
  };
  return {
    webhookIds,
    bodies,
    /** Waits until every id has a webhook; returns the ids still missing at the deadline. */
    async waitAll(ids: Iterable<number>, timeoutMs: number): Promise<number[]> {
      const wanted = [...ids];
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const missing = wanted.filter((id) => !bodies.has(id));
        if (!missing.length || Date.now() > deadline) return missing;
        await sleep(50);
      }
    },
  };
}

interface StreamOptions {
  /** The API bases to spread requests over (read before every request: a dead node leaves). */
  targets: () => string[];
  auth: string;
  callback: string;
  total: number;
  concurrency: number;
  /** Uploads with overwrite=false fail (409) if a job runs twice; with true they are idempotent. */
  overwrite: boolean;
  /** Every n-th request (n = uploadEvery) is an upload, the rest are pings; 1 = uploads only. */
  uploadEvery?: number;
  uploadBytes?: number;
  /** Folder the uploads go to (a second stream on the same instance needs another). */
  folder?: string;
}

/** Sends `total` async requests from `concurrency` clients; returns what was acknowledged. */
async function stream(o: StreamOptions) {
  const accepted = new Map<number, Sent>();
  const unexpected: string[] = [];
  let connectionErrors = 0;
  let next = 0;
  const every = o.uploadEvery ?? 2;
  async function client(): Promise<void> {
    for (let n = next++; n < o.total; n = next++) {
      const targets = o.targets();
      const base = targets[n % targets.length];
      const upload = n % every === every - 1;
      const headers = { authorization: o.auth, 'elements-async-request': 'true', 'elements-async-callback-url': o.callback };
      const sent: Sent = upload
        ? { kind: 'upload', file: `/${o.folder ?? 'u'}/f${n}.txt`, content: `${n} ${crypto.randomBytes(Math.max(8, (o.uploadBytes ?? 16) / 2)).toString('hex')}` }
        : { kind: 'ping' };
      let res: Response;
      let body: any;
      try {
        res = upload
          ? await fetch(`${base}/hubs/documents/files?path=${encodeURIComponent(sent.file!)}&overwrite=${o.overwrite}`, {
              method: 'POST',
              headers,
              body: multipartFile(sent.content!, path.basename(sent.file!)),
              signal: AbortSignal.timeout(10_000),
            })
          : await fetch(`${base}/hubs/documents/ping`, { headers, signal: AbortSignal.timeout(10_000) });
        body = await res.json();
      } catch {
        connectionErrors++; // never acknowledged (a killed node): not accepted
        continue;
      }
      if (res.status === 200 && Number.isInteger(body?.eventId) && body.eventStatus === 'dispatched') accepted.set(body.eventId, sent);
      else unexpected.push(`${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, client));
  return { accepted, unexpected, connectionErrors };
}

async function claims(cluster: Cluster): Promise<Claim[]> {
  return cluster.query('SELECT event_id::float8 AS event_id, instance_id, owner, running, lease_ms::float8 AS lease_ms, at_ms::float8 AS at_ms FROM test_claims ORDER BY at_ms, event_id');
}

function claimsByEvent(list: Claim[]): Map<number, Claim[]> {
  const by = new Map<number, Claim[]>();
  for (const c of list) by.set(c.event_id, [...(by.get(c.event_id) ?? []), c]);
  return by;
}

/** Every accepted event delivered once-per-notification, completed 200, and its upload on disk. */
function assertLedger(cluster: Cluster, accepted: Map<number, Sent>, hooks: ReturnType<typeof track>): void {
  for (const [eventId, sent] of accepted) {
    const body = hooks.bodies.get(eventId);
    assert.ok(body, `event ${eventId} was never delivered`);
    assert.equal(hooks.webhookIds.get(eventId)!.size, 1, `event ${eventId} got several notifications`);
    assert.equal(body.eventStatus, 'completed', `event ${eventId}: ${JSON.stringify(body).slice(0, 300)}`);
    assert.equal(body.statusCode, 200);
    if (sent.kind === 'ping') assert.equal(body.response.endpoint, 'localfs');
    else {
      assert.equal(body.response.events.at(-1).path, sent.file);
      assert.equal(fs.readFileSync(path.join(cluster.localfsBase, ROOT, sent.file!), 'utf8'), sent.content);
    }
  }
}

test('three nodes, one schema: a stream spread over them runs every job exactly once and delivers every notification', { skip, timeout: 60_000 }, async () => {
  const receiver = await startReceiver();
  let cluster: Cluster | null = null;
  try {
    cluster = await startCluster(['all', 'all', 'all'], { FERRY_INSTANCE_CONCURRENCY: '4' });
    await installClaimAudit(cluster);
    const hooks = track(receiver);
    const bases = cluster.nodes.map((n) => n.base!);
    const auth = await createInstance(bases[0], 'stream');
    // overwrite=false: a job run twice would find its own file and fail with 409.
    const run = await stream({ targets: () => bases, auth, callback: receiver.url, total: 200, concurrency: 12, overwrite: false });
    assert.deepEqual(run.unexpected, []);
    assert.equal(run.connectionErrors, 0);
    assert.equal(run.accepted.size, 200);
    const missing = await hooks.waitAll(run.accepted.keys(), 30_000);
    assert.deepEqual(missing, [], `${missing.length} events not delivered`);
    assertLedger(cluster, run.accepted, hooks);

    const list = await claims(cluster);
    const by = claimsByEvent(list);
    for (const eventId of run.accepted.keys()) assert.equal(by.get(eventId)?.length, 1, `event ${eventId} claimed ${by.get(eventId)?.length ?? 0} times`);
    const owners = new Set(list.map((c) => c.owner));
    assert.ok(owners.size >= 2, `only ${owners.size} runner took jobs`);
    assert.ok(list.every((c) => c.running <= 4), 'FERRY_INSTANCE_CONCURRENCY (4) exceeded');
    // The ledger reads the same from any node.
    const someId = [...run.accepted.keys()][7];
    for (const base of bases) {
      const res = await fetch(`${base}/instances/events/${someId}`, { headers: { authorization: PLATFORM_AUTH } });
      const event: any = await res.json();
      assert.equal(res.status, 200);
      assert.equal(event.status, 'NOTIFIED');
      assert.equal(event.execution?.state ?? event.execution, 'completed');
    }
    const left = await cluster.query('SELECT count(*)::int AS n FROM jobs');
    assert.equal(left[0].n, 0, 'completed jobs stay in the hot table');
  } finally {
    await cluster?.close();
    await receiver.close();
  }
});

test('a node killed with SIGKILL mid-stream: the others finish its leased jobs after the lease, and the ledger balances', { skip, timeout: 60_000 }, async (t) => {
  const receiver = await startReceiver();
  let cluster: Cluster | null = null;
  try {
    // Few job slots per node and larger uploads: a backlog builds. The victim's distinct lease
    // length marks its claims in the audit, so it is killed while it holds leases.
    cluster = await startCluster(['all', 'all'], { FERRY_JOB_CONCURRENCY: '4' });
    const victim = await cluster.addNode('all', { FERRY_LEASE: String(VICTIM_LEASE) });
    await installClaimAudit(cluster);
    const hooks = track(receiver);
    let alive = cluster.nodes.map((n) => n.base!);
    const auth = await createInstance(alive[0], 'kill');
    let killedAt = 0;
    let held: number[] = [];
    const running = stream({ targets: () => alive, auth, callback: receiver.url, total: 240, concurrency: 12, overwrite: true, uploadBytes: 32_768 });
    const killer = (async () => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        // Frozen while counting, so the leases seen are still held when SIGKILL lands. Before the
        // count, PostgreSQL must have read and finished everything the victim sent (a COMMIT still
        // in the socket would complete a job after the count): then what the count sees stays.
        victim.child.kill('SIGSTOP');
        for (let i = 0; i < 500; i++) {
          const { unread, active } = await pendingFor(cluster!, victim.child.pid!);
          if (unread === 0 && active === 0) break;
          await sleep(10);
        }
        const rows = await cluster!.query(
          `SELECT event_id::int AS id FROM jobs WHERE lease_until > floor(extract(epoch from clock_timestamp()) * 1000)
           AND lease_owner IN (SELECT owner FROM test_claims WHERE lease_ms = $1)`,
          [VICTIM_LEASE],
        );
        if (rows.length > 0) {
          held = rows.map((r) => r.id);
          break;
        }
        victim.child.kill('SIGCONT');
        await sleep(5);
      }
      alive = alive.filter((b) => b !== victim.base);
      killedAt = Date.now();
      await victim.kill();
    })();
    const run = await running;
    await killer;
    assert.ok(killedAt > 0);
    assert.deepEqual(run.unexpected, []);
    assert.ok(run.accepted.size >= 150, `only ${run.accepted.size} accepted`);
    const missing = await hooks.waitAll(run.accepted.keys(), 30_000);
    assert.deepEqual(missing, [], `${missing.length} accepted events never delivered`);
    assertLedger(cluster, run.accepted, hooks);

    // Claims: a job ran twice only when its earlier runner was the dead one (no claims after the kill),
    // and it was taken again only after the kill.
    const list = await claims(cluster);
    const victimOwners = new Set(list.filter((c) => c.lease_ms === VICTIM_LEASE).map((c) => c.owner));
    assert.equal(victimOwners.size, 1);
    const liveOwners = new Set(list.filter((c) => c.lease_ms !== VICTIM_LEASE).map((c) => c.owner));
    const by = claimsByEvent(list);
    let takenOver = 0;
    for (const [eventId, cs] of by) {
      if (cs.length === 1) continue;
      takenOver++;
      for (const earlier of cs.slice(0, -1)) {
        assert.ok(victimOwners.has(earlier.owner), `event ${eventId} was taken from a live runner`);
      }
      assert.ok(liveOwners.has(cs.at(-1)!.owner));
      assert.ok(cs.at(-1)!.at_ms >= killedAt, `event ${eventId} was taken again before the kill`);
    }
    assert.ok(held.length > 0, 'the victim held no leases in 20 s: nothing to take over');
    for (const eventId of held) assert.ok((by.get(eventId)?.length ?? 0) >= 2, `event ${eventId}, leased by the killed node, was never taken over`);
    assert.ok(takenOver >= held.length);
    assert.ok(list.every((c) => !victimOwners.has(c.owner) || c.at_ms <= killedAt + 50), 'the killed node claimed after its death');
    t.diagnostic(`${run.accepted.size} accepted, ${run.connectionErrors} unanswered (killed node), ${takenOver} jobs taken over from the killed node`);
    const left = await cluster.query('SELECT count(*)::int AS n FROM jobs');
    assert.equal(left[0].n, 0);
  } finally {
    await cluster?.close();
    await receiver.close();
  }
});

test('roles: an api node accepts, a worker node runs and delivers; a worker started later joins without a restart', { skip, timeout: 60_000 }, async () => {
  const receiver = await startReceiver();
  let cluster: Cluster | null = null;
  try {
    cluster = await startCluster(['api', 'worker']);
    await installClaimAudit(cluster);
    const hooks = track(receiver);
    const [api, worker] = cluster.nodes;
    assert.equal(worker.base, null);
    const auth = await createInstance(api.base!, 'roles');
    const first = await stream({ targets: () => [api.base!], auth, callback: receiver.url, total: 80, concurrency: 8, overwrite: false });
    assert.deepEqual(first.unexpected, []);
    assert.deepEqual(await hooks.waitAll(first.accepted.keys(), 20_000), []);
    assertLedger(cluster, first.accepted, hooks);
    const workerOwners = new Set((await claims(cluster)).map((c) => c.owner));
    assert.equal(workerOwners.size, 1, 'one runner (the worker) ran every job');

    // No worker: the api node accepts but runs nothing.
    await worker.stop();
    const second = await stream({ targets: () => [api.base!], auth, callback: receiver.url, total: 40, concurrency: 8, overwrite: false, folder: 'later' });
    assert.equal(second.accepted.size, 40);
    await sleep(1500);
    const [{ n, tried }] = await cluster.query('SELECT count(*)::int AS n, count(*) FILTER (WHERE attempts > 0)::int AS tried FROM jobs');
    assert.equal(n, 40, 'accepted jobs wait for a worker');
    assert.equal(tried, 0, 'the api node ran jobs');
    assert.ok([...second.accepted.keys()].every((id) => !hooks.bodies.has(id)));

    // A new worker joins the running cluster and drains the backlog.
    await cluster.addNode('worker');
    assert.deepEqual(await hooks.waitAll(second.accepted.keys(), 20_000), []);
    assertLedger(cluster, second.accepted, hooks);
    const late = (await claims(cluster)).filter((c) => second.accepted.has(c.event_id));
    assert.equal(late.length, 40);
    assert.ok(late.every((c) => !workerOwners.has(c.owner)), 'the new worker ran the backlog');
  } finally {
    await cluster?.close();
    await receiver.close();
  }
});

test('a node started while the others run takes jobs without any restart', { skip, timeout: 60_000 }, async () => {
  const receiver = await startReceiver();
  let cluster: Cluster | null = null;
  try {
    cluster = await startCluster(['all', 'all'], { FERRY_JOB_CONCURRENCY: '4' });
    await installClaimAudit(cluster);
    const hooks = track(receiver);
    const bases = cluster.nodes.map((n) => n.base!);
    const auth = await createInstance(bases[0], 'join');
    // Requests keep arriving at the first two nodes while the third starts (with a distinct
    // lease length, so its claims are recognisable), and after it has started.
    const during = stream({ targets: () => bases, auth, callback: receiver.url, total: 120, concurrency: 8, overwrite: false, uploadBytes: 16_384 });
    await sleep(200);
    await cluster.addNode('all', { FERRY_LEASE: String(VICTIM_LEASE) });
    const after = await stream({ targets: () => bases, auth, callback: receiver.url, total: 120, concurrency: 8, overwrite: false, uploadBytes: 16_384, folder: 'after' });
    const accepted = new Map([...(await during).accepted, ...after.accepted]);
    assert.equal(accepted.size, 240);
    assert.deepEqual(await hooks.waitAll(accepted.keys(), 30_000), []);
    assertLedger(cluster, accepted, hooks);
    const list = await claims(cluster);
    const by = claimsByEvent(list);
    for (const eventId of accepted.keys()) assert.equal(by.get(eventId)?.length, 1, `event ${eventId} claimed twice`);
    const joined = list.filter((c) => c.lease_ms === VICTIM_LEASE);
    assert.ok(joined.length > 0, 'the joining node took no jobs');
    assert.equal(new Set(list.map((c) => c.owner)).size, 3);
  } finally {
    await cluster?.close();
    await receiver.close();
  }
});

test('per-instance concurrency holds across nodes (FERRY_INSTANCE_CONCURRENCY=1)', { skip, timeout: 60_000 }, async (t) => {
  const receiver = await startReceiver();
  let cluster: Cluster | null = null;
  try {
    cluster = await startCluster(['all', 'all', 'all'], { FERRY_INSTANCE_CONCURRENCY: '1', FERRY_JOB_CONCURRENCY: '8' });
    await installClaimAudit(cluster);
    const hooks = track(receiver);
    const bases = cluster.nodes.map((n) => n.base!);
    const auth = await createInstance(bases[0], 'limit');
    const run = await stream({ targets: () => bases, auth, callback: receiver.url, total: 60, concurrency: 12, overwrite: false, uploadEvery: 1, uploadBytes: 65_536 });
    assert.deepEqual(run.unexpected, []);
    assert.deepEqual(await hooks.waitAll(run.accepted.keys(), 40_000), []);
    assertLedger(cluster, run.accepted, hooks);
    const list = await claims(cluster);
    assert.equal(list.length, 60);
    assert.ok(list.every((c) => c.running === 1), `a claim saw ${Math.max(...list.map((c) => c.running))} running jobs of one instance`);
    // Which node claims next is a race (the node that just finished a job is woken first), so
    // whether several nodes took part is reported, not asserted; the limit above is the guarantee.
    t.diagnostic(`claims by ${new Set(list.map((c) => c.owner)).size} node(s)`);
    // Executions of the instance never overlapped: each started after the previous one finished.
    const rows = await cluster.query('SELECT id::float8 AS id, started_at::float8 AS started_at, finished_at::float8 AS finished_at FROM events ORDER BY started_at, id');
    for (let i = 1; i < rows.length; i++) {
      assert.ok(rows[i].started_at >= rows[i - 1].finished_at, `events ${rows[i - 1].id} and ${rows[i].id} ran at the same time`);
    }
  } finally {
    await cluster?.close();
    await receiver.close();
  }
});
