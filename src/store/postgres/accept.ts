/**
 * Accepting asynchronous requests on PostgreSQL: a batch is ONE autocommit statement (writable
 * CTEs over unnest()ed arrays) that claims the idempotency keys, writes the events and their
 * jobs, and — with a handoff — leases the jobs to this node's runner. One round trip and one
 * commit per batch (the group commit); NOTIFY ferry_jobs only for jobs left for a claim.
 *
 * Idempotency keys are claimed with INSERT ... ON CONFLICT before the events are written: of
 * two nodes accepting the same (instance, key) at once, the second waits on the first's
 * uncommitted key row, then finds it taken (its event id is read in a second statement when
 * the first one's commit came after this statement's snapshot), so both answer the same
 * eventId and only one event exists. A key older than the 24 h window is taken over.
 *
 * Handoff (see Handoff in store/async.ts): the runner is asked (`take`) before the statement,
 * for every input of the batch, keyed ones included: a keyed input that turns out to repeat a
 * known key writes no job, so its offer is declined and given back like any other declined
 * offer — and a new keyed request starts as fast as any other, instead of waiting for a claim.
 * The statement then takes the instances' advisory locks (claim.ts) and leases a
 * taken job only when, seen after the locks, no other owner holds an unexpired lease on its
 * instance: the runner's own count then is the instance's whole count, and `take` keeps it
 * within FERRY_INSTANCE_CONCURRENCY, so the limit holds across nodes without the store knowing
 * it. Offers the statement declined are given back by the caller's settlement (Reservations).
 * Whether jobs already wait is the runner's judgement (it offers nothing then); this node's
 * own statements in flight are reconciled with its handoffs by InFlight (in-flight.ts).
 */
import type { AcceptInput, Accepted, Handoff } from '../async.js';
import { CLOCK_MS, instanceLockClass, JOBS_CHANNEL, nextIds, NOW_MS, run, type Db } from './db.js';
import type { InFlight } from './in-flight.js';
import { handedOffJob } from '../rows.js';

const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
/** Bodies above this are sent as a binary parameter of a statement of their own, not hex in an array. */
const INLINE_BODY_MAX = 256 * 1024;

/**
 * The accept statement. `$9` holds the bodies: a bytea[] (`array`), or one bytea sent as a
 * binary parameter (`single`, for a large body); `$10` the event ids drawn beforehand, or nulls
 * (drawn here). With `handoff`, `$11` flags the inputs the runner took, `$12` is its owner,
 * `$13` the lease, `$14` the lock class.
 */
function acceptSql(bodies: 'array' | 'single', handoff: boolean): string {
  const body = bodies === 'array' ? '$9::bytea[]' : 'ARRAY[$9::bytea]';
  const leased = handoff ? 'x.leased' : 'false';
  return `
WITH input AS MATERIALIZED (
  SELECT coalesce(u.given, nextval('events_id_seq')) AS id, u.*
  FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], ${body}, $10::bigint[]${
    handoff ? ', $11::bool[]' : ''
  }) WITH ORDINALITY AS u(org, inst, usr, method, url, cb, key, request, body, given${handoff ? ', offered' : ''}, ord)
),
keys AS (
  INSERT INTO idempotency_keys (instance_id, key, event_id, created_at)
  SELECT inst, key, id, ${NOW_MS} FROM input WHERE key IS NOT NULL ORDER BY inst, key
  ON CONFLICT (instance_id, key) DO UPDATE SET event_id = excluded.event_id, created_at = excluded.created_at
    WHERE idempotency_keys.created_at <= excluded.created_at - ${IDEMPOTENCY_WINDOW_MS}
  RETURNING instance_id, key
),
fresh AS MATERIALIZED (
  SELECT i.* FROM input i
  WHERE i.key IS NULL OR EXISTS (SELECT 1 FROM keys k WHERE k.instance_id = i.inst AND k.key = i.key)
),${
    handoff
      ? `
locks AS MATERIALIZED (
  SELECT * FROM ferry_lock_instances(hashtext($14), ARRAY(SELECT DISTINCT inst FROM fresh WHERE offered ORDER BY 1), $12, ${NOW_MS})
),
x AS MATERIALIZED (
  SELECT f.id, f.offered AND coalesce(l.others, 0) = 0 AS leased FROM fresh f LEFT JOIN locks l ON l.instance_id = f.inst
),`
      : ''
  }
ev AS (
  INSERT INTO events (id, organization_id, instance_id, user_id, created_at, status, execution, method, url, callback_url, started_at)
  SELECT f.id, f.org, f.inst, f.usr, ${NOW_MS}, 'DISPATCHED', CASE WHEN ${leased} THEN 'running' ELSE 'dispatched' END,
         f.method, f.url, f.cb, CASE WHEN ${leased} THEN ${CLOCK_MS} END
  FROM fresh f${handoff ? ' JOIN x ON x.id = f.id' : ''}
),
jb AS (
  INSERT INTO jobs (event_id, instance_id, request, body, lease_owner, lease_until, attempts)
  SELECT f.id, f.inst, f.request, f.body, ${handoff ? 'CASE WHEN x.leased THEN $12 END' : 'NULL'},
         ${handoff ? `CASE WHEN x.leased THEN ${NOW_MS} + $13::bigint ELSE 0 END` : '0'}, CASE WHEN ${leased} THEN 1 ELSE 0 END
  FROM fresh f${handoff ? ' JOIN x ON x.id = f.id' : ''}
)
SELECT i.ord, i.id, f.id IS NOT NULL AS created, ${handoff ? 'coalesce(x.leased, false)' : 'false'} AS leased, k.event_id AS existing
FROM input i
LEFT JOIN fresh f ON f.id = i.id${handoff ? '\nLEFT JOIN x ON x.id = i.id' : ''}
LEFT JOIN idempotency_keys k ON f.id IS NULL AND k.instance_id = i.inst AND k.key = i.key
  AND k.created_at > ${NOW_MS} - ${IDEMPOTENCY_WINDOW_MS}
ORDER BY i.ord`;
}

const STATEMENTS = {
  array: acceptSql('array', false),
  single: acceptSql('single', false),
  arrayHandoff: acceptSql('array', true),
  singleHandoff: acceptSql('single', true),
};

/** Stores a batch of accepted requests (one statement, or one per large body); answers in input order. */
export async function acceptEvents(
  db: Db,
  inFlight: InFlight,
  inputs: AcceptInput[],
  handoff?: Handoff<AcceptInput>,
): Promise<Accepted[]> {
  if (!inputs.length) return [];
  // The first input with a given (instance, key) owns it; later ones in the batch follow it.
  const firstWithKey = new Map<string, number>();
  const followers: [number, number][] = [];
  const sent: number[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const key = inputs[i].idempotencyKey;
    if (key) {
      const k = `${inputs[i].instanceId}\n${key}`;
      const first = firstWithKey.get(k);
      if (first !== undefined) {
        followers.push([i, first]);
        continue;
      }
      firstWithKey.set(k, i);
    }
    sent.push(i);
  }
  // Asked before the statement, in input order, for the inputs certainly new (see InFlight for
  // when this node's own statements in flight rule an offer out).
  const offers = handoff && !inFlight.claiming(handoff.owner) ? handoff : undefined;
  const offerable = (i: number) => !inFlight.isLeaving(inputs[i].instanceId);
  const offered = new Set(offers ? sent.filter((i) => offerable(i) && offers.take(inputs[i])) : []);
  const leaving = new Set(sent.filter((i) => !offered.has(i)).map((i) => inputs[i].instanceId));
  const handing = new Set([...offered].map((i) => inputs[i].instanceId));
  const before = inFlight.handoffsOf(leaving);
  const done = (async () => {
    if (before.length) await Promise.allSettled(before);
    return store(db, inputs, sent, followers, offered, offers);
  })();
  inFlight.accept(leaving, handing, offers?.owner ?? null, done);
  return done;
}

async function store(
  db: Db,
  inputs: AcceptInput[],
  sent: number[],
  followers: [number, number][],
  offered: Set<number>,
  handoff: Handoff<AcceptInput> | undefined,
): Promise<Accepted[]> {
  const result: (Accepted | undefined)[] = new Array(inputs.length);
  const small = sent.filter((i) => (inputs[i].body?.length ?? 0) <= INLINE_BODY_MAX);
  const large = sent.filter((i) => (inputs[i].body?.length ?? 0) > INLINE_BODY_MAX);
  const parts = [small, ...large.map((i) => [i])].filter((p) => p.length);
  let rows: AcceptRow[][];
  if (parts.length === 1) {
    const [text, values, name] = insertStatement(db, inputs, parts[0], small.length ? 'array' : 'single', offered, handoff, null);
    rows = [(await db.query(text, values, name)) as AcceptRow[]];
  } else {
    // Large bodies travel in statements of their own; one transaction keeps the batch all or
    // nothing, and ids drawn first keep them ascending in input order.
    rows = await db.tx(async (c) => {
      const ids = await nextIds(c, 'events_id_seq', sent.length);
      const idOf = new Map(sent.map((i, k) => [i, ids[k]]));
      const out: AcceptRow[][] = [];
      for (const part of parts) {
        out.push((await run(c, ...insertStatement(db, inputs, part, part === small ? 'array' : 'single', offered, handoff, idOf))) as AcceptRow[]);
      }
      return out;
    });
  }
  let leftForClaim = false;
  const unknown: number[] = [];
  parts.forEach((part, p) => {
    part.forEach((i, k) => {
      const r = rows[p][k];
      if (r.created) {
        leftForClaim ||= !r.leased;
        result[i] = r.leased ? { eventId: r.id, duplicate: false, job: handedOffJob(inputs[i], r.id) } : { eventId: r.id, duplicate: false };
      } else if (r.existing !== null) {
        result[i] = { eventId: r.existing, duplicate: true };
      } else {
        unknown.push(i);
      }
    });
  });
  if (unknown.length) {
    // Keys committed by another node after our statement's snapshot was taken: our ON CONFLICT
    // waited for them, so they are committed now.
    const keyRows = await db.query(
      `SELECT k.instance_id, k.key, k.event_id FROM idempotency_keys k
       JOIN unnest($1::int[], $2::text[]) AS u(i, key) ON k.instance_id = u.i AND k.key = u.key`,
      [unknown.map((i) => inputs[i].instanceId), unknown.map((i) => inputs[i].idempotencyKey)],
      'accept_keys_read',
    );
    const existing = new Map(keyRows.map((r) => [`${r.instance_id}\n${r.key}`, r.event_id as number]));
    for (const i of unknown) {
      const eventId = existing.get(`${inputs[i].instanceId}\n${inputs[i].idempotencyKey}`);
      if (eventId === undefined) throw new Error('idempotency key vanished while locked');
      result[i] = { eventId, duplicate: true };
    }
  }
  for (const [i, first] of followers) result[i] = { eventId: result[first]!.eventId, duplicate: true };
  if (leftForClaim) db.notify(JOBS_CHANNEL);
  return result as Accepted[];
}

interface AcceptRow {
  id: number;
  created: boolean;
  leased: boolean;
  existing: number | null;
}

/**
 * The accept statement for `part` (indexes into inputs), as [text, values, name]; its rows
 * come back in the order of `part` (ORDER BY ordinality).
 */
function insertStatement(
  db: Db,
  inputs: AcceptInput[],
  part: number[],
  bodies: 'array' | 'single',
  offered: Set<number>,
  handoff: Handoff<AcceptInput> | undefined,
  ids: Map<number, number> | null,
): [string, unknown[], string] {
  const col = <T>(f: (input: AcceptInput) => T) => part.map((i) => f(inputs[i]));
  const values: unknown[] = [
    col((x) => x.organizationId),
    col((x) => x.instanceId),
    col((x) => x.userId),
    col((x) => x.request.method),
    col((x) => x.request.url),
    col((x) => x.callbackUrl),
    col((x) => x.idempotencyKey),
    col((x) => JSON.stringify({ ...x.request, organizationId: x.organizationId, userId: x.userId })),
    bodies === 'array' ? col((x) => x.body) : inputs[part[0]].body,
    part.map((i) => ids?.get(i) ?? null),
  ];
  const withHandoff = handoff !== undefined && part.some((i) => offered.has(i));
  if (withHandoff) {
    values.push(part.map((i) => offered.has(i)), handoff.owner, Math.round(handoff.leaseMs), instanceLockClass(db.schema));
  }
  const variant = `${bodies}${withHandoff ? 'Handoff' : ''}` as keyof typeof STATEMENTS;
  return [STATEMENTS[variant], values, `accept_${variant}`];
}

