/**
 * Cancelling an event on PostgreSQL (issue 16), in one transaction: the job row is locked
 * first (claims and completions lock jobs before events too, so nothing deadlocks), then the
 * event. A job leased to a live runner makes its event `cancelling` and sends a NOTIFY on
 * CANCELS_CHANNEL, so whichever node runs it checks at once (its lease heartbeat would anyway);
 * a job nobody runs is deleted and completed as cancelled right here, with its notification
 * — a claim that comes after finds nothing, one that came first holds the row lock and the
 * job is running by the time this goes on.
 */
import type pg from 'pg';
import type { CancelAnswer, ExecutionState, JobOutcome } from '../async.js';
import { cancellable, spooledBodyOf } from '../async.js';
import { CANCELS_CHANNEL, NOTIFICATIONS_CHANNEL, NOW_MS, run, type Db } from './db.js';

export async function cancelEvent(
  db: Db,
  organizationId: number,
  eventId: number,
  pending: (instanceId: number) => JobOutcome,
): Promise<CancelAnswer | null> {
  const answer = await db.tx(async (c): Promise<CancelAnswer | null> => {
    const jobs = await run(c, `SELECT lease_until > ${NOW_MS} AS leased, request FROM jobs WHERE event_id = $1 FOR UPDATE`, [eventId]);
    const events = await run(
      c,
      'SELECT instance_id, execution, callback_url FROM events WHERE organization_id = $1 AND id = $2 FOR UPDATE',
      [organizationId, eventId],
    );
    if (!events.length) return null;
    const ev = events[0];
    const before = ev.execution as ExecutionState;
    if (!cancellable(before) || !jobs.length) return { before, after: before };
    if (jobs[0].leased) {
      await run(c, "UPDATE events SET execution = 'cancelling' WHERE id = $1", [eventId]);
      await run(c, 'SELECT pg_notify($1, $2)', [db.channel(CANCELS_CHANNEL), String(eventId)]);
      return { before, after: 'cancelling' };
    }
    await completeCancelled(c, organizationId, ev.callback_url, pending(ev.instance_id));
    const spool = spooledBodyOf(jobs[0].request);
    return { before, after: 'cancelled', ...(spool ? { spool } : {}) };
  });
  if (answer?.after === 'cancelled') db.notify(NOTIFICATIONS_CHANNEL);
  return answer;
}

/** Deletes the job and stores the cancelled outcome with its notification (inside the transaction). */
async function completeCancelled(c: pg.PoolClient, organizationId: number, url: string, outcome: JobOutcome): Promise<void> {
  await run(c, 'INSERT INTO subscriptions (organization_id, url) VALUES ($1, $2) ON CONFLICT (organization_id, url) DO NOTHING', [
    organizationId,
    url,
  ]);
  const [sub] = await run(c, 'SELECT id, active FROM subscriptions WHERE organization_id = $1 AND url = $2 FOR SHARE', [organizationId, url]);
  const [{ id }] = await run(c, "SELECT nextval('notifications_id_seq') AS id");
  const queued = Boolean(outcome.queue) || !sub.active;
  await run(c, 'DELETE FROM jobs WHERE event_id = $1', [outcome.eventId]);
  await run(
    c,
    `UPDATE events SET status = 'CONSUMED', execution = $2, status_code = $3, finished_at = ${NOW_MS}, response = $4, progress = $5
     WHERE id = $1`,
    [outcome.eventId, outcome.execution, outcome.statusCode, JSON.stringify(outcome.response ?? null), outcome.progress ? JSON.stringify(outcome.progress) : null],
  );
  await run(
    c,
    `INSERT INTO notifications (id, event_id, organization_id, subscription_id, body, status, due_at, lease_until, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6::text, CASE WHEN $6::text = 'queued' THEN NULL ELSE ${NOW_MS} END, 0, ${NOW_MS}, ${NOW_MS})`,
    [id, outcome.eventId, organizationId, sub.id, outcome.buildNotification(Number(id)), queued ? 'queued' : 'created'],
  );
}
