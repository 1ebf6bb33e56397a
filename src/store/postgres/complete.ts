/**
 * Completing jobs on PostgreSQL, in two round trips and one commit per batch:
 *
 * 1. A read-only query (nothing to flush at its end) finds the events that still have a job,
 *    their subscriptions, and draws their notification ids. A body holds its notification's
 *    id, so it is built now — once, and only for a notification about to be created (a late
 *    completion builds nothing). With a handoff the sender is asked (`take`) here, for each
 *    notification that will be due, in event order.
 * 2. ONE autocommit statement records the outcomes, deletes the job rows (the hot table stays
 *    small), creates the notifications with their bodies and leases the taken ones to the
 *    sender. The first completion of a job wins: one that finds its job gone (another runner's
 *    completion came between 1 and 2) creates nothing, its id stays unused, and the sender's
 *    reservation for it is given back by the caller's settlement (Reservations).
 *
 * Subscriptions: created on a callback URL's first completion (an extra statement, once), then
 * only read — no write when they exist. The statement reads them FOR SHARE: a concurrent
 * deactivation (recordDeliveries) waits for it, then queues what it created; or, a locking read
 * seeing the newest row version, the statement sees the subscription inactive and creates its
 * notifications queued (and not leased). Either way nothing stays due on an inactive URL.
 *
 * NOTIFY ferry_notifications only for due notifications left for a claim.
 */
import type { DueNotification, Handoff, JobOutcome, NotificationOffer } from '../async.js';
import { NOTIFICATIONS_CHANNEL, NOW_MS, run, type Db, type Row } from './db.js';

/** The events of `$1` that still have a job, with their subscription (if any) and a new notification id. */
const PREPARE = `
SELECT j.event_id, nextval('notifications_id_seq') AS notification_id, e.organization_id, e.instance_id,
       e.created_at AS accepted_at, e.callback_url AS url, s.id AS subscription_id, s.active
FROM (SELECT event_id FROM jobs WHERE event_id = ANY($1::bigint[])) j
JOIN events e ON e.id = j.event_id
LEFT JOIN subscriptions s ON s.organization_id = e.organization_id AND s.url = e.callback_url
ORDER BY j.event_id`;

/**
 * `$1`–`$9`, one element per outcome: event id, execution, status code, response, body, queue,
 * notification id, subscription id, taken by the sender; `$10`: the sender's lease in ms;
 * `$11`, `$12`: the trace context (traceparent, tracestate) per outcome; `$13` the progress
 * figures (JSON or null), one per outcome.
 * Returns the notifications created.
 */
const COMPLETE = `
WITH o AS MATERIALIZED (
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bool[], $7::bigint[], $8::int[], $9::bool[],
                       $11::text[], $12::text[], $13::text[])
    AS o(id, execution, status_code, response, body, queue, notification_id, subscription_id, taken, traceparent, tracestate, progress)
),
sub AS MATERIALIZED (
  SELECT s.id, s.active FROM subscriptions s WHERE s.id IN (SELECT subscription_id FROM o) ORDER BY s.id FOR SHARE OF s
),
gone AS MATERIALIZED (
  DELETE FROM jobs j USING o WHERE j.event_id = o.id RETURNING j.event_id
),
done AS MATERIALIZED (
  UPDATE events e SET status = 'CONSUMED', execution = o.execution, status_code = o.status_code,
    finished_at = ${NOW_MS}, response = o.response, progress = o.progress
  FROM gone JOIN o ON o.id = gone.event_id WHERE e.id = gone.event_id
  RETURNING e.id, e.organization_id
),
made AS MATERIALIZED (
  SELECT o.notification_id, d.id AS event_id, d.organization_id, o.subscription_id, o.body, o.traceparent, o.tracestate,
         o.queue OR NOT s.active AS queued, o.taken AND NOT (o.queue OR NOT s.active) AS leased
  FROM done d JOIN o ON o.id = d.id JOIN sub s ON s.id = o.subscription_id
),
ins AS (
  INSERT INTO notifications (id, event_id, organization_id, subscription_id, body, status, due_at, lease_until, created_at, updated_at,
                             traceparent, tracestate)
  SELECT notification_id, event_id, organization_id, subscription_id, body,
         CASE WHEN queued THEN 'queued' ELSE 'created' END, CASE WHEN queued THEN NULL ELSE ${NOW_MS} END,
         CASE WHEN leased THEN ${NOW_MS} + $10::bigint ELSE 0 END, ${NOW_MS}, ${NOW_MS}, traceparent, tracestate
  FROM made
)
SELECT event_id, queued, leased, ${NOW_MS} AS created_at FROM made ORDER BY event_id`;

/** Creates the subscriptions missing for these (organization, URL) pairs; none is ever deleted. */
const ENSURE_SUBSCRIPTIONS = `
INSERT INTO subscriptions (organization_id, url) SELECT * FROM unnest($1::int[], $2::text[])
ON CONFLICT (organization_id, url) DO NOTHING`;

const READ_SUBSCRIPTIONS = `
SELECT s.id, s.organization_id, s.url, s.active FROM subscriptions s
JOIN unnest($1::int[], $2::text[]) AS u(org, url) ON s.organization_id = u.org AND s.url = u.url`;

interface Pending {
  outcome: JobOutcome;
  eventId: number;
  notificationId: number;
  organizationId: number;
  instanceId: number;
  acceptedAt: number;
  url: string;
  subscriptionId: number;
  active: boolean;
  body: string;
  taken: boolean;
}

/** Records outcomes, deletes their jobs and creates their notifications, in one statement. */
export async function completeJobs(db: Db, outcomes: JobOutcome[], handoff?: Handoff<NotificationOffer>): Promise<DueNotification[]> {
  // Within one batch too, the first outcome of an event wins.
  const byEvent = new Map<number, JobOutcome>();
  for (const o of outcomes) if (!byEvent.has(o.eventId)) byEvent.set(o.eventId, o);
  if (!byEvent.size) return [];
  const found = await db.query(PREPARE, [[...byEvent.keys()]], 'complete_prepare');
  if (!found.length) return [];
  await ensureSubscriptions(db, found);
  const pending = found.map((r): Pending => {
    const outcome = byEvent.get(r.event_id)!;
    return {
      outcome,
      eventId: r.event_id,
      notificationId: r.notification_id,
      organizationId: r.organization_id,
      instanceId: r.instance_id,
      acceptedAt: Number(r.accepted_at),
      url: r.url,
      subscriptionId: r.subscription_id,
      active: r.active,
      body: outcome.buildNotification(r.notification_id),
      taken: false,
    };
  });
  for (const p of pending) {
    if (!handoff || p.outcome.queue || !p.active) continue;
    p.taken = handoff.take({ organizationId: p.organizationId, subscriptionId: p.subscriptionId, url: p.url });
  }
  const values = [
    pending.map((p) => p.eventId),
    pending.map((p) => p.outcome.execution),
    pending.map((p) => p.outcome.statusCode),
    pending.map((p) => JSON.stringify(p.outcome.response ?? null)),
    pending.map((p) => p.body),
    pending.map((p) => Boolean(p.outcome.queue)),
    pending.map((p) => p.notificationId),
    pending.map((p) => p.subscriptionId),
    pending.map((p) => p.taken),
    handoff ? Math.round(handoff.leaseMs) : 0,
    pending.map((p) => p.outcome.trace?.traceparent ?? null),
    pending.map((p) => p.outcome.trace?.tracestate ?? null),
    pending.map((p) => (p.outcome.progress ? JSON.stringify(p.outcome.progress) : null)),
  ];
  const withResults = pending.filter((p) => p.outcome.result);
  const made = withResults.length
    ? // A stored result commits with its outcome: one transaction, the results as binary parameters.
      await db.tx(async (c) => {
        const rows = await run(c, COMPLETE, values, 'complete');
        const created = new Set(rows.map((r) => r.event_id as number));
        for (const p of withResults) {
          if (!created.has(p.eventId)) continue;
          const result = p.outcome.result!;
          await run(
            c,
            `INSERT INTO results (event_id, organization_id, content_type, data, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id) DO UPDATE SET organization_id = excluded.organization_id,
               content_type = excluded.content_type, data = excluded.data, expires_at = excluded.expires_at`,
            [p.eventId, p.organizationId, result.contentType, result.data, result.expiresAt.getTime()],
          );
        }
        return rows;
      })
    : await db.query(COMPLETE, values, 'complete');
  const byId = new Map(pending.map((p) => [p.eventId, p]));
  const handed: DueNotification[] = [];
  let leftDue = false;
  for (const r of made) {
    if (r.queued) continue;
    if (!r.leased) {
      leftDue = true;
      continue;
    }
    const p = byId.get(r.event_id)!;
    handed.push({
      notificationId: p.notificationId,
      eventId: p.eventId,
      organizationId: p.organizationId,
      instanceId: p.instanceId,
      subscriptionId: p.subscriptionId,
      url: p.url,
      body: p.body,
      attempts: 0,
      createdDate: new Date(r.created_at),
      acceptedDate: new Date(p.acceptedAt),
      traceparent: p.outcome.trace?.traceparent ?? null,
      tracestate: p.outcome.trace?.tracestate ?? null,
    });
  }
  if (leftDue) db.notify(NOTIFICATIONS_CHANNEL);
  return handed;
}

/** Fills in the subscriptions of rows that have none yet, creating them (a callback URL's first completion). */
async function ensureSubscriptions(db: Db, rows: Row[]): Promise<void> {
  const missing = rows.filter((r) => r.subscription_id === null);
  if (!missing.length) return;
  const pairs = [...new Map(missing.map((r) => [`${r.organization_id}\n${r.url}`, r])).values()];
  const args = [pairs.map((p) => p.organization_id), pairs.map((p) => p.url)];
  await db.query(ENSURE_SUBSCRIPTIONS, args, 'subscriptions_ensure');
  const subs = await db.query(READ_SUBSCRIPTIONS, args, 'subscriptions_read');
  const byPair = new Map(subs.map((s) => [`${s.organization_id}\n${s.url}`, s]));
  for (const r of missing) {
    const s = byPair.get(`${r.organization_id}\n${r.url}`);
    if (!s) throw new Error('subscription vanished after it was created');
    r.subscription_id = s.id;
    r.active = s.active;
  }
}
