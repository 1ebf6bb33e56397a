/**
 * PostgreSQL implementation of change polling's store (store/changes.ts). Several nodes share
 * the schedules: a claim leases due rows with `FOR UPDATE SKIP LOCKED`, so two nodes never take
 * the same instance at once, and times come from the database clock (`NOW_MS`), so nodes with
 * skewed clocks agree on when a lease has expired. `recordPoll` locks the schedule row, checks
 * the lease is still the caller's, and writes the snapshot slice with its events and
 * notifications in one transaction; then NOTIFY ferry_notifications wakes the other nodes'
 * senders, and NOTIFY ferry_changes tells other pollers a schedule appeared (see changes/poller.ts).
 */
import type { PollRecorded, PollSchedule, PollSlice, SnapshotEntry } from '../changes.js';
import { NOTIFICATIONS_CHANNEL, NOW_MS, run, type Db, type Row } from './db.js';

/** Hint to other nodes' pollers that a schedule was created or changed. */
export const CHANGES_CHANNEL = 'ferry_changes';

const toSchedule = (r: Row): PollSchedule => ({
  instanceId: r.instance_id,
  organizationId: r.organization_id,
  intervalMs: Number(r.interval_ms),
  watch: r.watch,
  baselined: Boolean(r.baselined),
  nextPollAt: new Date(Number(r.next_poll_at)),
  snapshotVersion: Number(r.snapshot_version),
});

export async function schedulePolls(
  db: Db,
  input: { instanceId: number; organizationId: number; intervalMs: number; watch: string },
): Promise<void> {
  const changed = await db.tx(async (c) => {
    const [current] = await run(c, 'SELECT watch, interval_ms FROM change_schedules WHERE instance_id = $1 FOR UPDATE', [input.instanceId]);
    if (!current) {
      await run(c, 'DELETE FROM change_snapshots WHERE instance_id = $1', [input.instanceId]);
      await run(
        c,
        `INSERT INTO change_schedules (instance_id, organization_id, interval_ms, watch, baselined, next_poll_at, snapshot_version)
         VALUES ($1, $2, $3, $4, false, ${NOW_MS}, ${NOW_MS} * 1000)`,
        [input.instanceId, input.organizationId, input.intervalMs, input.watch],
      );
    } else if (current.watch !== input.watch) {
      await run(c, 'DELETE FROM change_snapshots WHERE instance_id = $1', [input.instanceId]);
      await run(c, `UPDATE change_schedules SET watch = $2, interval_ms = $3, baselined = false, next_poll_at = ${NOW_MS}, snapshot_version = snapshot_version + 1 WHERE instance_id = $1`, [
        input.instanceId,
        input.watch,
        input.intervalMs,
      ]);
    } else if (Number(current.interval_ms) !== input.intervalMs) {
      await run(
        c,
        `UPDATE change_schedules SET interval_ms = $2, next_poll_at = least(next_poll_at, ${NOW_MS} + $2) WHERE instance_id = $1`,
        [input.instanceId, input.intervalMs],
      );
    } else {
      return false;
    }
    return true;
  });
  // Other nodes' pollers learn of the new (or sooner) poll; nothing changed, nothing to say.
  if (changed) db.notify(CHANGES_CHANNEL);
}

export async function unschedulePolls(db: Db, instanceId: number): Promise<void> {
  await db.tx(async (c) => {
    await run(c, 'DELETE FROM change_schedules WHERE instance_id = $1', [instanceId]);
    await run(c, 'DELETE FROM change_snapshots WHERE instance_id = $1', [instanceId]);
  });
}

export async function scheduledInstances(db: Db): Promise<number[]> {
  return (await db.query('SELECT instance_id FROM change_schedules')).map((r) => r.instance_id);
}

export async function claimPolls(db: Db, owner: string, limit: number, leaseMs: number, exclude: number[]): Promise<PollSchedule[]> {
  const rows = await db.query(
    `UPDATE change_schedules s SET lease_owner = $1, lease_until = ${NOW_MS} + $3
     FROM (SELECT instance_id FROM change_schedules
           WHERE next_poll_at <= ${NOW_MS} AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until <= ${NOW_MS})
             AND NOT (instance_id = ANY($4::int[]))
           ORDER BY next_poll_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
     WHERE s.instance_id = due.instance_id RETURNING s.*`,
    [owner, limit, leaseMs, exclude],
  );
  return rows.map(toSchedule);
}

export async function nextPollDue(db: Db, owner: string, exclude: number[]): Promise<Date | null> {
  // Returned as a delay from the database clock, applied to this node's clock.
  const [r] = await db.query(
    `SELECT min(CASE WHEN lease_owner IS NULL OR lease_owner = $1 THEN next_poll_at ELSE greatest(next_poll_at, lease_until) END) - ${NOW_MS} AS wait
     FROM change_schedules WHERE NOT (instance_id = ANY($2::int[]))`,
    [owner, exclude],
  );
  return r.wait == null ? null : new Date(Date.now() + Number(r.wait));
}

export async function readSnapshot(db: Db, instanceId: number, after: string | null, limit: number): Promise<SnapshotEntry[]> {
  const rows = await db.query(
    'SELECT path, directory, fingerprint FROM change_snapshots WHERE instance_id = $1 AND ($2::text IS NULL OR path > $2) ORDER BY path LIMIT $3',
    [instanceId, after, limit],
  );
  return rows.map((r) => ({ path: r.path, directory: Boolean(r.directory), fingerprint: r.fingerprint }));
}

export async function recordPoll(db: Db, owner: string, instanceId: number, slice: PollSlice): Promise<PollRecorded | null> {
  const recorded = await db.tx(async (c): Promise<PollRecorded | null> => {
    const [schedule] = await run(c, 'SELECT lease_owner, snapshot_version FROM change_schedules WHERE instance_id = $1 FOR UPDATE', [instanceId]);
    if (!schedule || schedule.lease_owner !== owner) return null;
    if (slice.deletes.length > 0) {
      await run(c, 'DELETE FROM change_snapshots WHERE instance_id = $1 AND path = ANY($2::text[])', [instanceId, slice.deletes]);
    }
    if (slice.upserts.length > 0) {
      await run(
        c,
        `INSERT INTO change_snapshots (instance_id, path, directory, fingerprint)
         SELECT $1, * FROM unnest($2::text[], $3::bool[], $4::text[])
         ON CONFLICT (instance_id, path) DO UPDATE SET directory = excluded.directory, fingerprint = excluded.fingerprint`,
        [instanceId, slice.upserts.map((e) => e.path), slice.upserts.map((e) => e.directory), slice.upserts.map((e) => e.fingerprint)],
      );
    }
    const created: number[] = [];
    if (slice.notifications.length > 0) {
      await run(c, 'INSERT INTO subscriptions (organization_id, url) VALUES ($1, $2) ON CONFLICT (organization_id, url) DO NOTHING', [
        slice.organizationId,
        slice.callbackUrl,
      ]);
      // FOR SHARE: a concurrent deactivation waits for this transaction, then queues what it made.
      const [sub] = await run(c, 'SELECT id, active FROM subscriptions WHERE organization_id = $1 AND url = $2 FOR SHARE', [
        slice.organizationId,
        slice.callbackUrl,
      ]);
      const queued = !sub.active;
      for (const n of slice.notifications) {
        const [ev] = await run(
          c,
          `INSERT INTO events (organization_id, instance_id, user_id, created_at, status, execution, status_code, method, url, callback_url, started_at, finished_at, response)
           VALUES ($1, $2, $3, ${NOW_MS}, 'CONSUMED', 'completed', 200, 'POLL', $4, $5, ${NOW_MS}, ${NOW_MS}, $6) RETURNING id`,
          [slice.organizationId, instanceId, slice.userId, slice.url, slice.callbackUrl, JSON.stringify(n.response)],
        );
        const eventId = Number(ev.id);
        await run(
          c,
          `INSERT INTO notifications (event_id, organization_id, subscription_id, body, status, due_at, lease_until, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, ${queued ? 'NULL' : NOW_MS}, 0, ${NOW_MS}, ${NOW_MS})`,
          [eventId, slice.organizationId, sub.id, n.body(eventId), queued ? 'queued' : 'created'],
        );
        created.push(eventId);
      }
    }
    let snapshotVersion = Number(schedule.snapshot_version);
    if (slice.upserts.length > 0 || slice.deletes.length > 0) {
      snapshotVersion++;
      await run(c, 'UPDATE change_schedules SET snapshot_version = $2 WHERE instance_id = $1', [instanceId, snapshotVersion]);
    }
    if (slice.finish) {
      const next = slice.finish.nextPollAt.getTime() - Date.now();
      await run(
        c,
        `UPDATE change_schedules SET baselined = true, next_poll_at = ${NOW_MS} + $2, lease_until = ${NOW_MS} + $2 + $3 WHERE instance_id = $1`,
        [instanceId, Math.max(0, Math.round(next)), slice.finish.leaseMs],
      );
    } else if (slice.renewMs) {
      await run(c, `UPDATE change_schedules SET lease_until = ${NOW_MS} + $2 WHERE instance_id = $1`, [instanceId, slice.renewMs]);
    }
    return { eventIds: created, snapshotVersion };
  });
  if (recorded && recorded.eventIds.length > 0) db.notify(NOTIFICATIONS_CHANNEL);
  return recorded;
}

export async function postponePoll(db: Db, owner: string, instanceId: number, nextPollAt: Date, leaseMs: number): Promise<void> {
  const delay = Math.max(0, Math.round(nextPollAt.getTime() - Date.now()));
  await db.query(
    `UPDATE change_schedules SET next_poll_at = ${NOW_MS} + $3, lease_until = ${NOW_MS} + $3 + $4 WHERE instance_id = $1 AND lease_owner = $2`,
    [instanceId, owner, delay, leaseMs],
  );
}

export async function releasePolls(db: Db, owner: string): Promise<void> {
  await db.query('UPDATE change_schedules SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = $1', [owner]);
}
