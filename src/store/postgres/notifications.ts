/**
 * Notifications and their deliveries on PostgreSQL: claiming due notifications (FOR UPDATE
 * SKIP LOCKED, so several senders share the queue), recording attempts in batches, the
 * deliveries listing and redelivery. Semantics mirror sqlite/async.ts.
 *
 * Each export implements the `Store` method of the same name (documented in store.ts and
 * async.ts), taking the connection layer as its first argument.
 */
import type { DeliveryFilter, DeliveryListing, DeliveryRecord, DueNotification, Page, RedeliverOutcome } from '../async.js';
import { decodeCursor } from '../cursor.js';
import { pageOf, toDeliveryListing, toDueNotification } from '../rows.js';
import { NOTIFICATIONS_CHANNEL, NOW_MS, run, type Db } from './db.js';

/** Claimable: due and not leased. greatest() matches the expression index notifications_next. */
const CLAIM = `
WITH c AS MATERIALIZED (
  SELECT id FROM notifications
  WHERE due_at IS NOT NULL AND greatest(due_at, lease_until) <= ${NOW_MS} AND subscription_id <> ALL($3::int[])
  ORDER BY greatest(due_at, lease_until), id LIMIT $1
  FOR UPDATE SKIP LOCKED
),
u AS (
  UPDATE notifications n SET lease_until = ${NOW_MS} + $2::bigint FROM c WHERE n.id = c.id
  RETURNING n.id, n.event_id, n.organization_id, n.subscription_id, n.body, n.attempts, n.created_at, n.due_at,
            n.traceparent, n.tracestate
)
SELECT u.*, s.url, e.instance_id, e.created_at AS accepted_at FROM u
JOIN subscriptions s ON s.id = u.subscription_id
JOIN events e ON e.id = u.event_id
ORDER BY u.due_at, u.id`;

export async function claimNotifications(
  db: Db,
  limit: number,
  leaseMs: number,
  excludeSubscriptions: number[] = [],
): Promise<DueNotification[]> {
  if (limit <= 0) return [];
  const rows = await db.query(CLAIM, [limit, Math.round(leaseMs), excludeSubscriptions], 'claim_notifications');
  return rows.map(toDueNotification);
}

export async function releaseNotifications(db: Db, notificationIds: number[]): Promise<void> {
  if (!notificationIds.length) return;
  await db.query('UPDATE notifications SET lease_until = 0 WHERE id = ANY($1::bigint[])', [notificationIds], 'release_notifications');
}

/**
 * Records attempts and the resulting states: deliveries rows, notification states, NOTIFIED
 * events. A retry of a notification whose subscription was deactivated while it was in flight
 * is queued instead (its subscription row is read FOR SHARE, so a deactivation committing
 * meanwhile is either seen here or sees this statement's result and queues it itself). `$1`–`$6`: the attempts; `$7`–`$12`: one state per notification, in id order (two
 * senders updating overlapping notifications lock them in the same order). Returns the
 * subscriptions to deactivate.
 */
const RECORD = `
WITH d AS (
  INSERT INTO deliveries (notification_id, at, url, status_code, error, duration_ms)
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::int[])
),
subs AS MATERIALIZED (
  SELECT s.id, s.active FROM subscriptions s
  WHERE s.id IN (SELECT subscription_id FROM notifications WHERE id = ANY($7::bigint[]))
  ORDER BY s.id FOR SHARE
),
u AS (
  UPDATE notifications n
  SET status = CASE WHEN r.status = 'retry' AND NOT s.active THEN 'queued' ELSE r.status END,
    attempts = n.attempts + r.cnt,
    due_at = CASE WHEN r.status = 'retry' AND NOT s.active THEN NULL ELSE r.due_at END,
    lease_until = 0, updated_at = ${NOW_MS}
  FROM unnest($7::bigint[], $8::text[], $9::bigint[], $10::int[], $11::bool[], $12::bool[])
    AS r(id, status, due_at, cnt, delivered, deactivate), subs s
  WHERE n.id = r.id AND s.id = n.subscription_id
  RETURNING n.event_id, n.subscription_id, r.delivered, r.deactivate
),
notified AS (UPDATE events e SET status = 'NOTIFIED' FROM u WHERE e.id = u.event_id AND u.delivered)
SELECT DISTINCT subscription_id FROM u WHERE deactivate ORDER BY subscription_id`;

/**
 * Several records of one notification in a batch count as that many attempts; the last one
 * sets its state, any "delivered" marks the event NOTIFIED, any deactivation deactivates.
 * One autocommit statement; a batch that deactivates a subscription is one transaction, whose
 * later statements queue what is still due on it.
 */
export async function recordDeliveries(db: Db, records: DeliveryRecord[]): Promise<void> {
  if (!records.length) return;
  const perNotification = new Map<number, { count: number; last: DeliveryRecord; delivered: boolean; deactivate: boolean }>();
  for (const d of records) {
    const p = perNotification.get(d.notificationId) ?? { count: 0, last: d, delivered: false, deactivate: false };
    p.count++;
    p.last = d;
    p.delivered ||= d.next.status === 'delivered';
    p.deactivate ||= d.next.status === 'queued' && d.next.deactivate;
    perNotification.set(d.notificationId, p);
  }
  const updates = [...perNotification.entries()].sort((a, b) => a[0] - b[0]);
  const values = [
    records.map((d) => d.notificationId),
    records.map((d) => d.at.getTime()),
    records.map((d) => d.url),
    records.map((d) => d.statusCode),
    records.map((d) => d.error),
    records.map((d) => Math.round(d.durationMs)),
    updates.map(([id]) => id),
    updates.map(([, p]) => p.last.next.status),
    updates.map(([, p]) => (p.last.next.status === 'retry' ? p.last.next.at.getTime() : null)),
    updates.map(([, p]) => p.count),
    updates.map(([, p]) => p.delivered),
    updates.map(([, p]) => p.deactivate),
  ];
  if (!updates.some(([, p]) => p.deactivate)) {
    await db.query(RECORD, values, 'record_deliveries');
    return;
  }
  await db.tx(async (c) => {
    const changed = await run(c, RECORD, values, 'record_deliveries');
    if (!changed.length) return;
    const subs = changed.map((r) => r.subscription_id);
    // This waits for completions holding the subscriptions FOR SHARE; the next statement's
    // snapshot then includes the notifications they created.
    await run(c, 'UPDATE subscriptions SET active = false WHERE id = ANY($1::int[])', [subs]);
    await run(
      c,
      `UPDATE notifications SET status = 'queued', due_at = NULL, updated_at = ${NOW_MS}
       WHERE subscription_id = ANY($1::int[]) AND due_at IS NOT NULL AND lease_until <= ${NOW_MS}`,
      [subs],
    );
  });
}

export async function nextNotificationDue(db: Db): Promise<Date | null> {
  const rows = await db.query(
    `SELECT greatest(due_at, lease_until) AS t FROM notifications WHERE due_at IS NOT NULL
     ORDER BY greatest(due_at, lease_until) LIMIT 1`,
    [],
    'next_notification_due',
  );
  return rows.length ? new Date(rows[0].t) : null;
}

function deliveryWhere(organizationId: number, filter: DeliveryFilter, args: unknown[]): string {
  args.push(organizationId);
  const parts = [`n.organization_id = $${args.length}`];
  if (filter.status?.length) {
    args.push(filter.status);
    parts.push(`n.status = ANY($${args.length}::text[])`);
  }
  if (filter.url !== undefined) {
    args.push(filter.url);
    parts.push(`s.url = $${args.length}`);
  }
  return parts.join(' AND ');
}

export async function listDeliveries(
  db: Db,
  organizationId: number,
  filter: DeliveryFilter,
  options: { limit: number; cursor?: string },
): Promise<Page<DeliveryListing>> {
  const after = options.cursor ? decodeCursor(options.cursor) : 0;
  const args: unknown[] = [];
  const where = deliveryWhere(organizationId, filter, args);
  args.push(after, options.limit + 1);
  const rows = await db.query(
    `SELECT n.id, n.subscription_id, n.event_id, n.status, n.created_at, n.updated_at, s.url
     FROM notifications n JOIN subscriptions s ON s.id = n.subscription_id
     WHERE ${where} AND n.id > $${args.length - 1} ORDER BY n.id LIMIT $${args.length}`,
    args,
  );
  return pageOf(rows, options.limit, toDeliveryListing);
}

export async function redeliver(db: Db, organizationId: number, filter: DeliveryFilter): Promise<number> {
  const n = await db.tx(async (c) => {
    const subArgs: unknown[] = [organizationId];
    if (filter.url !== undefined) subArgs.push(filter.url);
    // Waits for completions holding these subscriptions FOR SHARE, as recordDeliveries does.
    await run(
      c,
      `UPDATE subscriptions SET active = true WHERE organization_id = $1${filter.url !== undefined ? ' AND url = $2' : ''}`,
      subArgs,
    );
    if (filter.status?.length && !filter.status.includes('queued')) return 0;
    const args: unknown[] = [];
    const where = deliveryWhere(organizationId, { ...filter, status: ['queued'] }, args);
    const res = await c.query(
      `UPDATE notifications SET status = 'created', due_at = ${NOW_MS}, attempts = 0, updated_at = ${NOW_MS} WHERE id IN (
         SELECT n.id FROM notifications n JOIN subscriptions s ON s.id = n.subscription_id WHERE ${where})`,
      args,
    );
    return res.rowCount ?? 0;
  });
  if (n > 0) db.notify(NOTIFICATIONS_CHANNEL);
  return n;
}

export async function redeliverNotification(db: Db, organizationId: number, notificationId: number): Promise<RedeliverOutcome> {
  const outcome = await db.tx(async (c): Promise<RedeliverOutcome> => {
    // FOR UPDATE waits for a sender recording an attempt of this notification.
    const [n] = await run(
      c,
      `SELECT status, subscription_id, lease_until > ${NOW_MS} AS in_flight FROM notifications
       WHERE id = $1 AND organization_id = $2 FOR UPDATE`,
      [notificationId, organizationId],
    );
    if (!n) return { result: 'not_found' };
    if (n.status !== 'retry' && n.status !== 'queued') return { result: 'not_failed', status: n.status };
    if (n.in_flight) return { result: 'in_flight' };
    await run(c, 'UPDATE subscriptions SET active = true WHERE id = $1', [n.subscription_id]);
    await run(
      c,
      `UPDATE notifications SET status = 'created', due_at = ${NOW_MS}, attempts = 0, updated_at = ${NOW_MS} WHERE id = $1`,
      [notificationId],
    );
    return { result: 'redelivered' };
  });
  if (outcome.result === 'redelivered') db.notify(NOTIFICATIONS_CHANNEL);
  return outcome;
}
