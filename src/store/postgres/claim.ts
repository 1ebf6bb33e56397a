/**
 * Claiming and renewing jobs on PostgreSQL, where several nodes claim from one table.
 *
 * Candidates are the oldest ready jobs (never leased, or lease expired) that fit in their
 * instance's free slots, taken from a short window of the oldest ready jobs; when that window is
 * full of saturated instances' backlogs, a skip scan over instances finds the others, so one
 * tenant's burst never hides another's jobs.
 *
 * The per-instance limit holds across nodes because a claim takes a transaction-level advisory
 * lock per candidate instance (in id order, so claimers cannot deadlock) before it counts that
 * instance's running jobs — with a snapshot taken after the locks — and leases. Without it, two
 * claimers whose candidate reads saw different moments (a lease expiring in between) could each
 * fill the same instance's slots. Advisory locks rather than a counter row per instance: nothing
 * to create on accept, nothing to keep in step on completion or lease expiry, no row churn, and
 * they vanish with the transaction (or the connection, when a node dies). Job rows are locked
 * FOR UPDATE SKIP LOCKED, so two nodes never lease the same job. An accept handing jobs off
 * takes the same locks (accept.ts).
 */
import type { ClaimedJob } from '../async.js';
import { CLOCK_MS, instanceLockClass, NOW_MS, type Db, type Row } from './db.js';

/**
 * Candidates per wanted job: a claimer that waited on another's instance locks then finds those
 * jobs leased, and takes the next candidates instead of coming back empty.
 */
const CANDIDATE_FACTOR = 2;
/** Smallest window of oldest ready jobs the fast candidate search looks at. */
const WINDOW_MIN = 32;

/**
 * The claim, ONE autocommit statement (one round trip, one commit):
 *
 * 1. Candidates, read with the statement's snapshot and no locks: the oldest `$3` ready jobs (a
 *    short walk of the primary key), each kept if it fits in its instance's free slots — unless
 *    that window was full and still could not fill the claim, i.e. a saturated instance's
 *    backlog hides other instances' jobs: then (`fair_needed`) a skip scan lists the instances
 *    that have jobs (one index probe each) and those whose oldest ready job is oldest
 *    contribute up to their free slots. The skip scan costs one probe per instance with jobs,
 *    so it is the fallback, not the rule; when not needed, its anchor is a one-time false filter.
 * 2. The candidates' instance locks, taken in id order (claimers cannot deadlock), and their
 *    running jobs counted with a fresh snapshot (ferry_lock_instances, migrations.ts), so every
 *    lease committed by another claimer of these instances is counted.
 *    (An event cancelled while its job waited for a takeover is not started: the job comes back
 *    with `runnable` false, and the runner completes it as cancelled without running it.)
 * 3. The candidates still ready, ranked into their instance's free slots; the oldest that fit
 *    locked (SKIP LOCKED), leased, their events marked running. A candidate leased by someone
 *    else since the snapshot is counted running and ranked too (fewer slots, never more), and
 *    FOR UPDATE then sees its new lease and skips it. Ranking before locking keeps rows this
 *    claim will not take unlocked. The instance locks are held until the statement commits.
 *
 * Row sets taken from a CTE are matched as `= ANY(ARRAY(...))`, an index probe per id: the
 * planner cannot size a CTE and would otherwise scan whole tables to hash-join it.
 *
 * `$1` candidates wanted, `$2` per-instance limit, `$3` window, `$4` limit, `$5` owner, `$6`
 * lease ms, `$7` lock class.
 */
const CLAIM = `
WITH RECURSIVE
seen_running AS MATERIALIZED (
  SELECT instance_id, count(*) AS n FROM jobs WHERE lease_until > ${NOW_MS} GROUP BY instance_id
),
win AS MATERIALIZED (
  SELECT event_id, instance_id FROM jobs WHERE lease_until <= ${NOW_MS} ORDER BY event_id LIMIT $3
),
fast AS MATERIALIZED (
  SELECT event_id, instance_id FROM (
    SELECT w.event_id, w.instance_id,
           row_number() OVER (PARTITION BY w.instance_id ORDER BY w.event_id) + coalesce(r.n, 0) AS slot
    FROM win w LEFT JOIN seen_running r ON r.instance_id = w.instance_id
  ) ranked
  WHERE slot <= $2 ORDER BY event_id LIMIT $1
),
fair_needed AS MATERIALIZED (
  SELECT (SELECT count(*) FROM win) >= $3 AND (SELECT count(*) FROM fast) < $4 AS yes
),
inst(id) AS (
  SELECT min(instance_id) FROM jobs WHERE (SELECT yes FROM fair_needed)
  UNION ALL
  SELECT (SELECT min(instance_id) FROM jobs WHERE instance_id > inst.id) FROM inst WHERE inst.id IS NOT NULL
),
open AS (
  SELECT inst.id, $2::int - coalesce(r.n, 0)::int AS room
  FROM inst LEFT JOIN seen_running r ON r.instance_id = inst.id
  WHERE inst.id IS NOT NULL AND coalesce(r.n, 0) < $2::int
),
heads AS (
  SELECT o.id, o.room, h.event_id FROM open o
  CROSS JOIN LATERAL (
    SELECT event_id FROM jobs WHERE instance_id = o.id AND lease_until <= ${NOW_MS} ORDER BY event_id LIMIT 1
  ) h
  ORDER BY h.event_id LIMIT $1
),
fair AS (
  SELECT c.event_id, heads.id AS instance_id FROM heads
  CROSS JOIN LATERAL (
    SELECT event_id FROM jobs WHERE instance_id = heads.id AND lease_until <= ${NOW_MS} ORDER BY event_id LIMIT heads.room
  ) c
  ORDER BY c.event_id LIMIT $1
),
candidates AS MATERIALIZED (
  SELECT * FROM fast WHERE NOT (SELECT yes FROM fair_needed)
  UNION ALL
  SELECT * FROM fair
),
running AS MATERIALIZED (
  SELECT instance_id, leased AS n
  FROM ferry_lock_instances(hashtext($7), ARRAY(SELECT DISTINCT instance_id FROM candidates ORDER BY 1), $5, ${NOW_MS})
),
ranked AS (
  SELECT j.event_id,
         row_number() OVER (PARTITION BY j.instance_id ORDER BY j.event_id) + coalesce(r.n, 0) AS slot
  FROM jobs j LEFT JOIN running r ON r.instance_id = j.instance_id
  WHERE j.event_id = ANY(ARRAY(SELECT event_id FROM candidates)) AND j.lease_until <= ${NOW_MS}
),
chosen AS MATERIALIZED (
  SELECT j.event_id FROM jobs j
  WHERE j.event_id = ANY(ARRAY(SELECT event_id FROM ranked WHERE slot <= $2)) AND j.lease_until <= ${NOW_MS}
  ORDER BY j.event_id LIMIT $4
  FOR UPDATE OF j SKIP LOCKED
),
leased AS (
  UPDATE jobs j SET lease_owner = $5, lease_until = ${NOW_MS} + $6::bigint, attempts = j.attempts + 1
  WHERE j.event_id = ANY(ARRAY(SELECT event_id FROM chosen))
  RETURNING j.*
),
started AS (
  UPDATE events e SET execution = 'running', started_at = ${CLOCK_MS}
  WHERE e.id = ANY(ARRAY(SELECT event_id FROM leased)) AND e.execution IN ('dispatched', 'running')
  RETURNING e.id
)
SELECT leased.*, leased.event_id IN (SELECT id FROM started) AS runnable FROM leased ORDER BY event_id`;

/** Leases up to `limit` runnable jobs to `owner`, at most `perInstance` running per instance. */
export async function claimJobs(
  db: Db,
  owner: string,
  limit: number,
  leaseMs: number,
  perInstance: number,
): Promise<ClaimedJob[]> {
  if (limit <= 0 || perInstance <= 0) return [];
  const wanted = limit * CANDIDATE_FACTOR;
  const window = Math.max(WINDOW_MIN, wanted * 2);
  const rows = await db.query(
    CLAIM,
    [wanted, perInstance, window, limit, owner, Math.round(leaseMs), instanceLockClass(db.schema)],
    'claim',
  );
  return rows.map((r: Row): ClaimedJob => {
    const request = JSON.parse(r.request);
    return {
      eventId: r.event_id,
      instanceId: r.instance_id,
      organizationId: request.organizationId,
      userId: request.userId,
      request: { method: request.method, url: request.url, headers: request.headers, ...(request.spool ? { spool: request.spool } : {}) },
      body: r.body ?? null,
      attempts: r.attempts - 1,
      // Not started: its event was cancelled (while its runner died): complete it, never run it.
      ...(r.runnable ? {} : { cancelled: true }),
    };
  });
}

/** Extends the leases `owner` still holds; a job taken over by another owner is left alone. */
export async function renewLeases(db: Db, owner: string, eventIds: number[], leaseMs: number): Promise<void> {
  if (!eventIds.length) return;
  await db.query(
    `UPDATE jobs SET lease_until = ${NOW_MS} + $3::bigint WHERE event_id = ANY($1::bigint[]) AND lease_owner = $2`,
    [eventIds, owner, Math.round(leaseMs)],
    'renew_leases',
  );
}
