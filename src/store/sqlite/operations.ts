/**
 * SQLite implementation of store/operations.ts: the readiness probe's schema check, the
 * metrics scrape's counts and a draining node's lease release. Counting reads jobs (small: a
 * row lives only while its event waits or runs) and the partial indexes of notifications.
 */
import type { Database } from 'better-sqlite3';
import type { OperationalCounts, SchemaStatus } from '../operations.js';
import { MIGRATIONS } from './migrations.js';

type Row = Record<string, any>;

export const REQUIRED_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

export function schemaStatus(db: Database): SchemaStatus {
  return { applied: db.pragma('user_version', { simple: true }) as number, required: REQUIRED_VERSION };
}

export function operationalCounts(db: Database, now = Date.now()): OperationalCounts {
  const jobs = db
    .prepare('SELECT count(*) AS total, (SELECT count(*) FROM jobs WHERE lease_until > ?) AS running, (SELECT min(event_id) FROM jobs WHERE +lease_until <= ?) AS oldest FROM jobs')
    .get(now, now) as Row;
  const oldest = jobs.oldest == null ? undefined : (db.prepare('SELECT created_at FROM events WHERE id = ?').get(jobs.oldest) as Row | undefined);
  const retry = db.prepare("SELECT count(*) AS n FROM notifications WHERE due_at IS NOT NULL AND status = 'retry'").get() as Row;
  const queued = db.prepare("SELECT count(*) AS n FROM notifications WHERE status = 'queued'").get() as Row;
  return {
    pending: jobs.total - jobs.running,
    running: jobs.running,
    retryWait: retry.n,
    oldestPendingDate: oldest ? new Date(oldest.created_at) : null,
    notificationsQueued: queued.n,
  };
}

/** Runs inside a write transaction (the caller's). */
export function releaseLeases(db: Database, owner: string, jobIds: number[], notificationIds: number[]): void {
  const job = db.prepare('UPDATE jobs SET lease_until = 0, lease_owner = NULL WHERE event_id = ? AND lease_owner = ?');
  for (const id of jobIds) job.run(id, owner);
  const notification = db.prepare('UPDATE notifications SET lease_until = 0 WHERE id = ? AND due_at IS NOT NULL');
  for (const id of notificationIds) notification.run(id);
}
