/**
 * Reading events back (with their notification and delivery attempts), stored results,
 * purging and counts on PostgreSQL. A page of events is hydrated with two extra queries, not
 * two per event.
 *
 * Each export implements the `Store` method of the same name (documented in store.ts and
 * async.ts), taking the connection layer as its first argument.
 */
import type { EventListOptions, EventRecord, Page, StoredResult } from '../async.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { NOW_MS, type Db, type Row } from './db.js';
import { toEvent } from '../rows.js';


async function hydrate(db: Db, events: Row[]): Promise<EventRecord[]> {
  if (!events.length) return [];
  const notifications = await db.query('SELECT * FROM notifications WHERE event_id = ANY($1::bigint[])', [
    events.map((e) => e.id),
  ]);
  const byEvent = new Map(notifications.map((n) => [n.event_id as number, n]));
  const deliveries = notifications.length
    ? await db.query('SELECT * FROM deliveries WHERE notification_id = ANY($1::bigint[]) ORDER BY id', [
        notifications.map((n) => n.id),
      ])
    : [];
  const byNotification = new Map<number, Row[]>();
  for (const d of deliveries) {
    const list = byNotification.get(d.notification_id) ?? [];
    list.push(d);
    byNotification.set(d.notification_id, list);
  }
  return events.map((e) => {
    const n = byEvent.get(e.id);
    return toEvent(e, n, n ? byNotification.get(n.id) ?? [] : []);
  });
}

export async function getEvent(db: Db, organizationId: number, eventId: number): Promise<EventRecord | null> {
  const rows = await db.query('SELECT * FROM events WHERE organization_id = $1 AND id = $2', [organizationId, eventId], 'event_get');
  return rows.length ? (await hydrate(db, rows))[0] : null;
}

export async function listEvents(db: Db, organizationId: number, options: EventListOptions): Promise<Page<EventRecord>> {
  const before = options.cursor ? decodeCursor(options.cursor) : Number.MAX_SAFE_INTEGER;
  const args: unknown[] = [organizationId];
  let filters = '';
  if (options.instanceId !== undefined) {
    args.push(options.instanceId);
    filters += ` AND instance_id = $${args.length}`;
  }
  if (options.status !== undefined) {
    args.push(options.status);
    filters += ` AND status = $${args.length}`;
  }
  args.push(before, options.limit + 1);
  const rows = await db.query(
    `SELECT * FROM events WHERE organization_id = $1${filters} AND id < $${args.length - 1} ORDER BY id DESC LIMIT $${args.length}`,
    args,
  );
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return { items: await hydrate(db, page), next: more ? encodeCursor(page[page.length - 1].id) : null };
}

export async function getResult(db: Db, organizationId: number, eventId: number): Promise<StoredResult | null> {
  const rows = await db.query(
    `SELECT content_type, data, expires_at FROM results WHERE organization_id = $1 AND event_id = $2 AND expires_at > ${NOW_MS}`,
    [organizationId, eventId],
  );
  return rows.length
    ? { contentType: rows[0].content_type, data: rows[0].data, expiresAt: new Date(rows[0].expires_at) }
    : null;
}

export async function purgeExpired(db: Db, now: Date, idempotencyBefore: Date): Promise<void> {
  await db.tx(async (c) => {
    await c.query('DELETE FROM results WHERE expires_at <= $1', [now.getTime()]);
    await c.query('DELETE FROM idempotency_keys WHERE created_at <= $1', [idempotencyBefore.getTime()]);
    // Journals of finished jobs (issue 25): a job row lives until its outcome is stored.
    await c.query('DELETE FROM job_journal j WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.event_id = j.event_id)');
  });
}

export async function asyncCounts(db: Db): Promise<{ jobs: number; events: number; notificationsPending: number }> {
  const [r] = await db.query(
    `SELECT (SELECT count(*) FROM jobs) AS jobs, (SELECT count(*) FROM events) AS events,
            (SELECT count(*) FROM notifications WHERE due_at IS NOT NULL) AS pending`,
  );
  return { jobs: r.jobs, events: r.events, notificationsPending: r.pending };
}
