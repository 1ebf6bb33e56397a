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
 * instance's running jobs and leases. Without it, two claimers whose candidate reads saw
 * different moments (a lease expiring in between) could each fill the same instance's slots.
 * Advisory locks rather than a counter row per instance: nothing to create on accept, nothing
 * to keep in step on completion or lease expiry, no row churn, and they vanish with the
 * transaction (or the connection, when a node dies). Job rows are locked FOR UPDATE SKIP
 * LOCKED, so two nodes never lease the same job.
 */
import type { ClaimedJob } from '../async.js';
import { NOW_MS, run, type Db, type Row } from './db.js';

/**
 * Candidates per wanted job: a claimer that waited on another's instance locks then finds those
 * jobs leased, and takes the next candidates instead of coming back empty.
 */
const CANDIDATE_FACTOR = 2;
/** Smallest window of oldest ready jobs the fast candidate query looks at. */
const WINDOW_MIN = 512;

/** Running (leased, unexpired) jobs per instance: a short range at the top of jobs_lease. */
const RUNNING = `SELECT instance_id, count(*) AS n FROM jobs WHERE lease_until > ${NOW_MS} GROUP BY instance_id`;

/**
 * Fast candidates: the oldest `$3` ready jobs (a short walk of the primary key), each kept if it
 * fits in its instance's free slots. One row more than the picks: `scanned` says how many ready
 * jobs the window held, so the caller knows whether older-than-the-rest jobs may lie beyond it.
 */
const WINDOW_CANDIDATES = `
WITH running AS (${RUNNING}),
win AS MATERIALIZED (
  SELECT event_id, instance_id FROM jobs WHERE lease_until <= ${NOW_MS} ORDER BY event_id LIMIT $3
),
picked AS (
  SELECT event_id, instance_id FROM (
    SELECT w.event_id, w.instance_id,
           row_number() OVER (PARTITION BY w.instance_id ORDER BY w.event_id) + coalesce(r.n, 0) AS slot
    FROM win w LEFT JOIN running r ON r.instance_id = w.instance_id
  ) ranked
  WHERE slot <= $2 ORDER BY event_id LIMIT $1
)
SELECT s.scanned, p.event_id, p.instance_id
FROM (SELECT count(*) AS scanned FROM win) s LEFT JOIN picked p ON true
ORDER BY p.event_id`;

/**
 * Fair candidates, when the window is full of saturated instances' jobs: a skip scan lists the
 * instances that have jobs (one index probe each), and the instances whose oldest ready job is
 * oldest contribute up to their free slots. Costs one probe per instance with jobs, so it is
 * the fallback, not the rule.
 */
const FAIR_CANDIDATES = `
WITH RECURSIVE inst(id) AS (
  SELECT min(instance_id) FROM jobs
  UNION ALL
  SELECT (SELECT min(instance_id) FROM jobs WHERE instance_id > inst.id) FROM inst WHERE inst.id IS NOT NULL
),
running AS (${RUNNING}),
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
 * Candidates for a claim, read without locks (the claim re-checks everything): the fast window
 * unless it was full and still could not fill the claim, i.e. a saturated instance's backlog
 * hides other instances' jobs, which the fair query then finds.
 */
async function candidates(db: Db, limit: number, perInstance: number): Promise<Row[]> {
  const wanted = limit * CANDIDATE_FACTOR;
  const window = Math.max(WINDOW_MIN, wanted * 8);
  const rows = await db.query(WINDOW_CANDIDATES, [wanted, perInstance, window], 'claim_window');
  const picked = rows.filter((r) => r.event_id !== null);
  if (picked.length >= limit || rows[0].scanned < window) return picked;
  return db.query(FAIR_CANDIDATES, [wanted, perInstance], 'claim_fair');
}

/**
 * The claim proper, run once the candidates' instance locks are held, so its snapshot sees every
 * lease that other claimers of these instances committed: rank the candidates still ready into
 * their instance's free slots, lock (SKIP LOCKED) the oldest that fit, lease them and mark their
 * events running. Ranking before locking keeps rows this claim will not take unlocked.
 */
const LEASE = `
WITH running AS (
  SELECT instance_id, count(*) AS n FROM jobs
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

/** Leases up to `limit` runnable jobs to `owner`, at most `perInstance` running per instance. */
export async function claimJobs(
  db: Db,
  owner: string,
  limit: number,
  leaseMs: number,
  perInstance: number,
): Promise<ClaimedJob[]> {
  if (limit <= 0 || perInstance <= 0) return [];
  const picked = await candidates(db, limit, perInstance);
  if (!picked.length) return [];
  const instances = [...new Set(picked.map((r) => r.instance_id as number))].sort((a, b) => a - b);
  const rows = await db.tx(async (c) => {
    // Two-int advisory locks (class, instance id); advisory locks are database-wide, so the class
    // is keyed by schema and deployments sharing a database do not wait on each other.
    await run(
      c,
      'SELECT pg_advisory_xact_lock(hashtext($1), i) FROM unnest($2::int[]) WITH ORDINALITY AS u(i, n) ORDER BY n',
      [`ferry.claim.${db.schema ?? 'public'}`, instances],
      'claim_locks',
    );
    return run(
      c,
      LEASE,
      [instances, picked.map((r) => r.event_id), perInstance, limit, owner, Math.round(leaseMs)],
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

/** Extends the leases `owner` still holds; a job taken over by another owner is left alone. */
export async function renewLeases(db: Db, owner: string, eventIds: number[], leaseMs: number): Promise<void> {
  if (!eventIds.length) return;
  await db.query(
    `UPDATE jobs SET lease_until = ${NOW_MS} + $3::bigint WHERE event_id = ANY($1::bigint[]) AND lease_owner = $2`,
    [eventIds, owner, Math.round(leaseMs)],
    'renew_leases',
  );
}
