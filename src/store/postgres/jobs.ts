/**
 * Accepting, claiming and completing jobs on PostgreSQL, where several nodes share the tables.
 *
 * - accept: one transaction per batch (the group commit), multi-row INSERTs over unnest()ed
 *   arrays. Idempotency keys are claimed with INSERT ... ON CONFLICT before the events exist:
 *   of two nodes accepting the same key at once, the second waits on the first's key row and
 *   then reads its event id, so both answer the same eventId.
 * - claim: candidates are chosen per instance (the oldest ready jobs of the instances with
 *   the oldest ready jobs, each within its free slots), so a saturated instance's backlog never
 *   hides other instances' jobs. The per-instance limit holds across nodes because a claim takes
 *   a transaction-level advisory lock per candidate instance (in id order, so claimers cannot
 *   deadlock) before it counts that instance's running jobs and leases. Advisory locks rather
 *   than a counter row per instance: nothing to create on accept, nothing to keep in step on
 *   completion or on lease expiry, no row churn, and they vanish with the transaction (or the
 *   connection, when a node dies). Rows are locked FOR UPDATE SKIP LOCKED, so two nodes never
 *   lease the same job.
 * - complete: one transaction per batch; the job row is deleted (the hot table stays small),
 *   the first completion wins.
 */
import type pg from 'pg';
import type { AcceptInput, Accepted, ClaimedJob, JobOutcome } from '../async.js';
import { NOW_MS, run, type Db, type Row } from './db.js';

const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
/** Bodies above this are sent as binary parameters of their own INSERT, not hex in an array. */
const INLINE_BODY_MAX = 256 * 1024;
const CANDIDATE_FACTOR = 2;
/** Advisory lock class of per-instance claim locks (two-int form: class, instance id). */
const CLAIM_LOCK_CLASS = 0x46455259; // "FERY"

export const JOBS_CHANNEL = 'ferry_jobs';
export const NOTIFICATIONS_CHANNEL = 'ferry_notifications';

async function nextIds(c: pg.PoolClient, sequence: string, n: number): Promise<{ ids: number[]; now: number }> {
  const rows = await run(
    c,
    `SELECT nextval('${sequence}') AS id, ${NOW_MS} AS now FROM generate_series(1, $1)`,
    [n],
    `nextval_${sequence}`,
  );
  return { ids: rows.map((r) => r.id as number).sort((a, b) => a - b), now: rows[0].now };
}

export async function acceptEvents(db: Db, inputs: AcceptInput[]): Promise<Accepted[]> {
  if (!inputs.length) return [];
  const out = await db.tx(async (c) => {
    const { ids, now } = await nextIds(c, 'events_id_seq', inputs.length);
    const result: (Accepted | undefined)[] = new Array(inputs.length);
    // The first input with a given (instance, key) owns it; later ones in the batch follow it.
    const firstWithKey = new Map<string, number>();
    const followers: [number, number][] = [];
    for (let i = 0; i < inputs.length; i++) {
      const key = inputs[i].idempotencyKey;
      if (!key) continue;
      const k = `${inputs[i].instanceId}\n${key}`;
      const first = firstWithKey.get(k);
      if (first === undefined) firstWithKey.set(k, i);
      else followers.push([i, first]);
    }
    if (firstWithKey.size) {
      // Sorted so that two nodes inserting overlapping keys lock them in the same order.
      const keyed = [...firstWithKey.values()].sort(
        (a, b) => inputs[a].instanceId - inputs[b].instanceId || (inputs[a].idempotencyKey! < inputs[b].idempotencyKey! ? -1 : 1),
      );
      const owned = await run(
        c,
        `INSERT INTO idempotency_keys (instance_id, key, event_id, created_at)
         SELECT i, k, e, $4 FROM unnest($1::int[], $2::text[], $3::bigint[]) AS u(i, k, e)
         ON CONFLICT (instance_id, key) DO UPDATE SET event_id = excluded.event_id, created_at = excluded.created_at
           WHERE idempotency_keys.created_at <= $4::bigint - $5::bigint
         RETURNING instance_id, key`,
        [
          keyed.map((i) => inputs[i].instanceId),
          keyed.map((i) => inputs[i].idempotencyKey),
          keyed.map((i) => ids[i]),
          now,
          IDEMPOTENCY_WINDOW_MS,
        ],
        'accept_keys',
      );
      const mine = new Set(owned.map((r) => `${r.instance_id}\n${r.key}`));
      const taken = keyed.filter((i) => !mine.has(`${inputs[i].instanceId}\n${inputs[i].idempotencyKey}`));
      if (taken.length) {
        // A live key: its row is locked by our ON CONFLICT and committed, so this read is stable.
        const rows = await run(
          c,
          `SELECT k.instance_id, k.key, k.event_id FROM idempotency_keys k
           JOIN unnest($1::int[], $2::text[]) AS u(i, key) ON k.instance_id = u.i AND k.key = u.key`,
          [taken.map((i) => inputs[i].instanceId), taken.map((i) => inputs[i].idempotencyKey)],
          'accept_keys_read',
        );
        const existing = new Map(rows.map((r) => [`${r.instance_id}\n${r.key}`, r.event_id as number]));
        for (const i of taken) {
          const eventId = existing.get(`${inputs[i].instanceId}\n${inputs[i].idempotencyKey}`);
          if (eventId === undefined) throw new Error('idempotency key vanished while locked');
          result[i] = { eventId, duplicate: true };
        }
      }
    }
    const following = new Set(followers.map(([i]) => i));
    const fresh: number[] = [];
    for (let i = 0; i < inputs.length; i++) {
      if (result[i] || following.has(i)) continue;
      fresh.push(i);
      result[i] = { eventId: ids[i], duplicate: false };
    }
    for (const [i, first] of followers) result[i] = { eventId: result[first]!.eventId, duplicate: true };
    await insertEvents(c, inputs, fresh, ids, now);
    return { accepted: result as Accepted[], created: fresh.length };
  });
  if (out.created) db.notify(JOBS_CHANNEL);
  return out.accepted;
}

async function insertEvents(c: pg.PoolClient, inputs: AcceptInput[], fresh: number[], ids: number[], now: number): Promise<void> {
  if (!fresh.length) return;
  const col = <T>(f: (input: AcceptInput, i: number) => T, which = fresh) => which.map((i) => f(inputs[i], i));
  const request = (input: AcceptInput) =>
    JSON.stringify({ ...input.request, organizationId: input.organizationId, userId: input.userId });
  const small = fresh.filter((i) => (inputs[i].body?.length ?? 0) <= INLINE_BODY_MAX);
  const large = fresh.filter((i) => (inputs[i].body?.length ?? 0) > INLINE_BODY_MAX);
  await run(
    c,
    `WITH e AS (
       INSERT INTO events (id, organization_id, instance_id, user_id, created_at, status, execution, method, url, callback_url)
       SELECT id, org, inst, usr, $8::bigint, 'DISPATCHED', 'dispatched', method, url, cb
       FROM unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::text[], $6::text[], $7::text[])
         AS u(id, org, inst, usr, method, url, cb)
     )
     INSERT INTO jobs (event_id, instance_id, request, body)
     SELECT * FROM unnest($9::bigint[], $10::int[], $11::text[], $12::bytea[])`,
    [
      col((_, i) => ids[i]),
      col((x) => x.organizationId),
      col((x) => x.instanceId),
      col((x) => x.userId),
      col((x) => x.request.method),
      col((x) => x.request.url),
      col((x) => x.callbackUrl),
      now,
      col((_, i) => ids[i], small),
      col((x) => x.instanceId, small),
      col(request, small),
      col((x) => x.body, small),
    ],
    'accept_events',
  );
  for (const i of large) {
    await run(c, 'INSERT INTO jobs (event_id, instance_id, request, body) VALUES ($1, $2, $3, $4)', [
      ids[i],
      inputs[i].instanceId,
      request(inputs[i]),
      inputs[i].body,
    ]);
  }
}

/**
 * Candidates: a skip scan lists the instances that have jobs (one index probe each), each
 * instance's free slots come from its running jobs, and the instances whose oldest ready job is
 * oldest contribute up to their free slots. Read without locks; the claim re-checks everything.
 */
const CANDIDATES = `
WITH RECURSIVE inst(id) AS (
  SELECT min(instance_id) FROM jobs
  UNION ALL
  SELECT (SELECT min(instance_id) FROM jobs WHERE instance_id > inst.id) FROM inst WHERE inst.id IS NOT NULL
),
running AS (
  SELECT instance_id, count(*) AS n FROM jobs WHERE lease_until > ${NOW_MS} GROUP BY instance_id
),
open AS (
  SELECT inst.id, $2::int - coalesce(r.n, 0)::int AS room
  FROM inst LEFT JOIN running r ON r.instance_id = inst.id
  WHERE inst.id IS NOT NULL AND coalesce(r.n, 0) < $2::int
),
heads AS (
  SELECT o.id, o.room, h.event_id FROM open o
  CROSS JOIN LATERAL (
    SELECT event_id FROM jobs WHERE instance_id = o.id AND lease_until <= ${NOW_MS} ORDER BY event_id LIMIT 1
  ) h
  ORDER BY h.event_id LIMIT $1
)
SELECT c.event_id, heads.id AS instance_id FROM heads
CROSS JOIN LATERAL (
  SELECT event_id FROM jobs WHERE instance_id = heads.id AND lease_until <= ${NOW_MS} ORDER BY event_id LIMIT heads.room
) c
ORDER BY c.event_id LIMIT $1`;

/**
 * The claim proper, run once the candidates' instance locks are held, so its snapshot sees every
 * lease that other claimers of these instances committed: rank the candidates still ready into
 * their instance's free slots, lock (SKIP LOCKED) the oldest that fit, lease them and mark their
 * events running. Ranking before locking keeps rows this claim will not take unlocked.
 */
const LEASE = `
WITH running AS (
  SELECT instance_id, count(*)::int AS n FROM jobs
  WHERE lease_until > ${NOW_MS} AND instance_id = ANY($1::int[]) GROUP BY instance_id
),
ranked AS (
  SELECT j.event_id,
         row_number() OVER (PARTITION BY j.instance_id ORDER BY j.event_id) + coalesce(r.n, 0) AS slot
  FROM jobs j LEFT JOIN running r ON r.instance_id = j.instance_id
  WHERE j.event_id = ANY($2::bigint[]) AND j.lease_until <= ${NOW_MS}
),
chosen AS MATERIALIZED (
  SELECT j.event_id FROM jobs j JOIN ranked k ON k.event_id = j.event_id
  WHERE k.slot <= $3 AND j.lease_until <= ${NOW_MS}
  ORDER BY j.event_id LIMIT $4
  FOR UPDATE OF j SKIP LOCKED
),
leased AS (
  UPDATE jobs j SET lease_owner = $5, lease_until = ${NOW_MS} + $6::bigint, attempts = j.attempts + 1
  FROM chosen WHERE j.event_id = chosen.event_id
  RETURNING j.*
),
started AS (
  UPDATE events e SET execution = 'running', started_at = ${NOW_MS}
  FROM leased WHERE e.id = leased.event_id AND e.execution IN ('dispatched', 'running')
)
SELECT * FROM leased ORDER BY event_id`;

export async function claimJobs(
  db: Db,
  owner: string,
  limit: number,
  leaseMs: number,
  perInstance: number,
): Promise<ClaimedJob[]> {
  if (limit <= 0 || perInstance <= 0) return [];
  // Twice as many candidates as wanted: a claimer that waited on another's instance locks
  // then finds those jobs leased, and takes the next ones instead of coming back empty.
  const candidates = await db.query(CANDIDATES, [limit * CANDIDATE_FACTOR, perInstance], 'claim_candidates');
  if (!candidates.length) return [];
  const instances = [...new Set(candidates.map((r) => r.instance_id as number))].sort((a, b) => a - b);
  const rows = await db.tx(async (c) => {
    await run(
      c,
      'SELECT pg_advisory_xact_lock($1::int, i) FROM unnest($2::int[]) WITH ORDINALITY AS u(i, n) ORDER BY n',
      [CLAIM_LOCK_CLASS, instances],
      'claim_locks',
    );
    return run(
      c,
      LEASE,
      [instances, candidates.map((r) => r.event_id), perInstance, limit, owner, Math.round(leaseMs)],
      'claim_lease',
    );
  });
  return rows.map((r: Row): ClaimedJob => {
    const request = JSON.parse(r.request);
    return {
      eventId: r.event_id,
      instanceId: r.instance_id,
      organizationId: request.organizationId,
      userId: request.userId,
      request: { method: request.method, url: request.url, headers: request.headers },
      body: r.body ?? null,
      attempts: r.attempts - 1,
    };
  });
}

export async function renewLeases(db: Db, owner: string, eventIds: number[], leaseMs: number): Promise<void> {
  if (!eventIds.length) return;
  await db.query(
    `UPDATE jobs SET lease_until = ${NOW_MS} + $3::bigint WHERE event_id = ANY($1::bigint[]) AND lease_owner = $2`,
    [eventIds, owner, Math.round(leaseMs)],
    'renew_leases',
  );
}

export async function completeJobs(db: Db, outcomes: JobOutcome[]): Promise<void> {
  // Within one batch too, the first outcome of an event wins.
  const seen = new Set<number>();
  const batch = outcomes.filter((o) => !seen.has(o.eventId) && seen.add(o.eventId));
  if (!batch.length) return;
  const due = await db.tx(async (c) => {
    const done = await run(
      c,
      `WITH gone AS (DELETE FROM jobs WHERE event_id = ANY($1::bigint[]) RETURNING event_id),
       o AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[]) AS o(id, execution, status_code, response))
       UPDATE events e SET status = 'CONSUMED', execution = o.execution, status_code = o.status_code,
         finished_at = ${NOW_MS}, response = o.response
       FROM gone JOIN o ON o.id = gone.event_id WHERE e.id = gone.event_id
       RETURNING e.id, e.organization_id, e.callback_url`,
      [
        batch.map((o) => o.eventId),
        batch.map((o) => o.execution),
        batch.map((o) => o.statusCode),
        batch.map((o) => JSON.stringify(o.response ?? null)),
      ],
      'complete_events',
    );
    if (!done.length) return false;
    const subs = await subscriptions(c, done);
    const { ids, now } = await nextIds(c, 'notifications_id_seq', done.length);
    const byId = new Map(batch.map((o) => [o.eventId, o]));
    const rows = done
      .sort((a, b) => a.id - b.id)
      .map((ev, k) => {
        const o = byId.get(ev.id)!;
        const sub = subs.get(`${ev.organization_id}\n${ev.callback_url}`)!;
        return { id: ids[k], o, ev, sub, queued: Boolean(o.queue) || !sub.active };
      });
    await run(
      c,
      `INSERT INTO notifications (id, event_id, organization_id, subscription_id, body, status, due_at, created_at, updated_at)
       SELECT id, ev, org, sub, body, CASE WHEN q THEN 'queued' ELSE 'created' END, CASE WHEN q THEN NULL ELSE $7::bigint END, $7::bigint, $7::bigint
       FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::text[], $6::bool[]) AS u(id, ev, org, sub, body, q)`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.ev.id),
        rows.map((r) => r.ev.organization_id),
        rows.map((r) => r.sub.id),
        rows.map((r) => r.o.buildNotification(r.id)),
        rows.map((r) => r.queued),
        now,
      ],
      'complete_notifications',
    );
    for (const r of rows) {
      if (!r.o.result) continue;
      await run(
        c,
        `INSERT INTO results (event_id, organization_id, content_type, data, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (event_id) DO UPDATE SET organization_id = excluded.organization_id,
           content_type = excluded.content_type, data = excluded.data, expires_at = excluded.expires_at`,
        [r.ev.id, r.ev.organization_id, r.o.result.contentType, r.o.result.data, r.o.result.expiresAt.getTime()],
      );
    }
    return rows.some((r) => !r.queued);
  });
  if (due) db.notify(NOTIFICATIONS_CHANNEL);
}

/**
 * The subscriptions of these (organization, callback URL) pairs, created when missing and held
 * FOR SHARE until commit: a concurrent deactivation (recordDeliveries) waits for this
 * transaction, then queues what it created, or this transaction sees the subscription inactive
 * and creates its notifications queued. Either way nothing stays due on an inactive URL.
 */
async function subscriptions(c: pg.PoolClient, events: Row[]): Promise<Map<string, { id: number; active: boolean }>> {
  const pairs = [...new Map(events.map((e) => [`${e.organization_id}\n${e.callback_url}`, e])).values()].sort(
    (a, b) => a.organization_id - b.organization_id || (a.callback_url < b.callback_url ? -1 : a.callback_url > b.callback_url ? 1 : 0),
  );
  const args = [pairs.map((p) => p.organization_id), pairs.map((p) => p.callback_url)];
  await run(
    c,
    `INSERT INTO subscriptions (organization_id, url) SELECT * FROM unnest($1::int[], $2::text[])
     ON CONFLICT (organization_id, url) DO NOTHING`,
    args,
    'subscriptions_ensure',
  );
  const rows = await run(
    c,
    `SELECT s.id, s.organization_id, s.url, s.active FROM subscriptions s
     JOIN unnest($1::int[], $2::text[]) AS u(org, url) ON s.organization_id = u.org AND s.url = u.url
     ORDER BY s.id FOR SHARE OF s`,
    args,
    'subscriptions_share',
  );
  return new Map(rows.map((r) => [`${r.organization_id}\n${r.url}`, { id: r.id, active: r.active }]));
}
