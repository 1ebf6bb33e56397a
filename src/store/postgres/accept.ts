/**
 * Accepting asynchronous requests on PostgreSQL: one transaction per batch (the group commit),
 * multi-row INSERTs over unnest()ed arrays, NOTIFY ferry_jobs after the commit.
 *
 * Idempotency keys are claimed with INSERT ... ON CONFLICT before the events are written: of
 * two nodes accepting the same (instance, key) at once, the second waits on the first's
 * uncommitted key row, then finds it taken and reads its event id, so both answer the same
 * eventId and only one event exists. A key older than the 24 h window is taken over.
 */
import type pg from 'pg';
import type { AcceptInput, Accepted } from '../async.js';
import { JOBS_CHANNEL, nextIds, run, type Db } from './db.js';

const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
/** Bodies above this are sent as binary parameters of their own INSERT, not hex in an array. */
const INLINE_BODY_MAX = 256 * 1024;

/** Stores a batch of accepted requests in one transaction; answers in input order. */
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

/** Events and their jobs; large bodies each in their own INSERT as a binary parameter. */
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
