/**
 * Completing jobs on PostgreSQL: one transaction per batch records the outcomes, deletes the
 * job rows (the hot table stays small) and creates the notifications, then NOTIFY
 * ferry_notifications. The first completion of a job wins; a job taken over after its lease
 * expired may finish twice, and the second finds its row gone.
 */
import type pg from 'pg';
import type { JobOutcome } from '../async.js';
import { NOTIFICATIONS_CHANNEL, NOW_MS, nextIds, run, type Db, type Row } from './db.js';

/** Records outcomes, deletes their jobs and creates their notifications, in one transaction. */
export async function completeJobs(db: Db, outcomes: JobOutcome[]): Promise<void> {
  // Within one batch too, the first outcome of an event wins.
  const seen = new Set<number>();
  const batch = outcomes.filter((o) => !seen.has(o.eventId) && seen.add(o.eventId));
  if (!batch.length) return;
  const due = await db.tx(async (c) => {
    const done = await run(
      c,
      `WITH gone AS (DELETE FROM jobs WHERE event_id = ANY($1::bigint[]) RETURNING event_id),
       o AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[]) AS o(id, execution, status_code, response))
       UPDATE events e SET status = 'CONSUMED', execution = o.execution, status_code = o.status_code,
         finished_at = ${NOW_MS}, response = o.response
       FROM gone JOIN o ON o.id = gone.event_id WHERE e.id = gone.event_id
       RETURNING e.id, e.organization_id, e.callback_url`,
      [
        batch.map((o) => o.eventId),
        batch.map((o) => o.execution),
        batch.map((o) => o.statusCode),
        batch.map((o) => JSON.stringify(o.response ?? null)),
      ],
      'complete_events',
    );
    if (!done.length) return false;
    const subs = await subscriptions(c, done);
    const { ids, now } = await nextIds(c, 'notifications_id_seq', done.length);
    const byId = new Map(batch.map((o) => [o.eventId, o]));
    const rows = done
      .sort((a, b) => a.id - b.id)
      .map((ev, k) => {
        const o = byId.get(ev.id)!;
        const sub = subs.get(`${ev.organization_id}\n${ev.callback_url}`)!;
        return { id: ids[k], o, ev, sub, queued: Boolean(o.queue) || !sub.active };
      });
    await run(
      c,
      `INSERT INTO notifications (id, event_id, organization_id, subscription_id, body, status, due_at, created_at, updated_at)
       SELECT id, ev, org, sub, body, CASE WHEN q THEN 'queued' ELSE 'created' END, CASE WHEN q THEN NULL ELSE $7::bigint END, $7::bigint, $7::bigint
       FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::text[], $6::bool[]) AS u(id, ev, org, sub, body, q)`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.ev.id),
        rows.map((r) => r.ev.organization_id),
        rows.map((r) => r.sub.id),
        rows.map((r) => r.o.buildNotification(r.id)),
        rows.map((r) => r.queued),
        now,
      ],
      'complete_notifications',
    );
    for (const r of rows) {
      if (!r.o.result) continue;
      await run(
        c,
        `INSERT INTO results (event_id, organization_id, content_type, data, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (event_id) DO UPDATE SET organization_id = excluded.organization_id,
           content_type = excluded.content_type, data = excluded.data, expires_at = excluded.expires_at`,
        [r.ev.id, r.ev.organization_id, r.o.result.contentType, r.o.result.data, r.o.result.expiresAt.getTime()],
      );
    }
    return rows.some((r) => !r.queued);
  });
  if (due) db.notify(NOTIFICATIONS_CHANNEL);
}

/**
 * The subscriptions of these (organization, callback URL) pairs, created when missing and held
 * FOR SHARE until commit: a concurrent deactivation (recordDeliveries) waits for this
 * transaction, then queues what it created, or this transaction sees the subscription inactive
 * and creates its notifications queued. Either way nothing stays due on an inactive URL.
 */
async function subscriptions(c: pg.PoolClient, events: Row[]): Promise<Map<string, { id: number; active: boolean }>> {
  const pairs = [...new Map(events.map((e) => [`${e.organization_id}\n${e.callback_url}`, e])).values()].sort(
    (a, b) => a.organization_id - b.organization_id || (a.callback_url < b.callback_url ? -1 : a.callback_url > b.callback_url ? 1 : 0),
  );
  const args = [pairs.map((p) => p.organization_id), pairs.map((p) => p.callback_url)];
  await run(
    c,
    `INSERT INTO subscriptions (organization_id, url) SELECT * FROM unnest($1::int[], $2::text[])
     ON CONFLICT (organization_id, url) DO NOTHING`,
    args,
    'subscriptions_ensure',
  );
  const rows = await run(
    c,
    `SELECT s.id, s.organization_id, s.url, s.active FROM subscriptions s
     JOIN unnest($1::int[], $2::text[]) AS u(org, url) ON s.organization_id = u.org AND s.url = u.url
     ORDER BY s.id FOR SHARE OF s`,
    args,
    'subscriptions_share',
  );
  return new Map(rows.map((r) => [`${r.organization_id}\n${r.url}`, { id: r.id, active: r.active }]));
}
