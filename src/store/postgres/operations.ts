/**
 * PostgreSQL implementation of store/operations.ts: the readiness probe's schema check, the
 * metrics scrape's counts (cluster-wide: every node reads the same tables) and a draining
 * node's lease release, which wakes the other nodes through NOTIFY so they take what it gave
 * back at once.
 */
import type { OperationalCounts, SchemaStatus } from '../operations.js';
import { JOBS_CHANNEL, NOTIFICATIONS_CHANNEL, NOW_MS, type Db } from './db.js';
import { MIGRATIONS } from './migrations.js';

export const REQUIRED_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

export async function schemaStatus(db: Db): Promise<SchemaStatus> {
  const [r] = await db.query('SELECT coalesce(max(version), 0)::int AS v FROM ferry_migrations', [], 'schema_status');
  return { applied: Number(r.v), required: REQUIRED_VERSION };
}

/** One statement; `jobs` holds only waiting and running events, queued notifications have a partial index. */
const COUNTS = `
SELECT (SELECT count(*) FROM jobs WHERE lease_until <= ${NOW_MS})::bigint AS pending,
       (SELECT count(*) FROM jobs WHERE lease_until > ${NOW_MS})::bigint AS running,
       (SELECT e.created_at FROM events e WHERE e.id = (SELECT min(event_id) FROM jobs WHERE lease_until <= ${NOW_MS})) AS oldest,
       (SELECT count(*) FROM notifications WHERE due_at IS NOT NULL AND status = 'retry')::bigint AS retry_wait,
       (SELECT count(*) FROM notifications WHERE status = 'queued')::bigint AS queued`;

export async function operationalCounts(db: Db): Promise<OperationalCounts> {
  const [r] = await db.query(COUNTS, [], 'operational_counts');
  return {
    pending: Number(r.pending),
    running: Number(r.running),
    retryWait: Number(r.retry_wait),
    oldestPendingDate: r.oldest == null ? null : new Date(Number(r.oldest)),
    notificationsQueued: Number(r.queued),
  };
}

export async function releaseLeases(db: Db, owner: string, jobIds: number[], notificationIds: number[]): Promise<void> {
  if (jobIds.length) {
    await db.query(
      'UPDATE jobs SET lease_until = 0, lease_owner = NULL WHERE event_id = ANY($1::bigint[]) AND lease_owner = $2',
      [jobIds, owner],
      'release_jobs',
    );
    // Awaited, not db.notify(): the node exits right after.
    await db.query('SELECT pg_notify($1, $2)', [db.channel(JOBS_CHANNEL), 'drain'], 'notify_drain');
  }
  if (notificationIds.length) {
    await db.query('UPDATE notifications SET lease_until = 0 WHERE id = ANY($1::bigint[]) AND due_at IS NOT NULL', [notificationIds], 'release_notifications');
    await db.query('SELECT pg_notify($1, $2)', [db.channel(NOTIFICATIONS_CHANNEL), 'drain'], 'notify_drain');
  }
}
