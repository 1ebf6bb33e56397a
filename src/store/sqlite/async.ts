/**
 * SQLite implementation of the asynchronous half of the store (store/async.ts). Every method is
 * one synchronous transaction, so claims never race: write transactions take the write lock at
 * BEGIN, also against the runner thread's connection.
 */
import type { Database, Statement, Transaction } from 'better-sqlite3';
import type {
  AcceptInput,
  Accepted,
  AsyncStore,
  CancelAnswer,
  ClaimedJob,
  DeliveryFilter,
  DeliveryListing,
  DeliveryRecord,
  DueNotification,
  EventListOptions,
  EventRecord,
  ExecutionState,
  Handoff,
  JobOutcome,
  NotificationOffer,
  Page,
  RedeliverOutcome,
  StoredResult,
} from '../async.js';
import { cancellable, spooledBodyOf } from '../async.js';
import type { StoredProgress } from '../../async/progress.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import type { WriteLock } from './write-lock.js';
import { handedOffJob, pageOf, toDeliveryListing, toDueNotification, toEvent } from '../rows.js';

type Row = Record<string, any>;

const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
/** How long a write waits, without blocking the event loop, for a database another process holds. */
export const SQLITE_BUSY_WAIT_MS = 5000;
/** The connection's own busy timeout: the longest a single attempt may block its thread. */
export const SQLITE_BUSY_TIMEOUT_MS = 5;

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}


export abstract class SqliteAsyncStore implements AsyncStore {
  private readonly statements = new Map<string, Statement>();
  /** One transaction wrapper for every write (better-sqlite3 builds a new one per `transaction()` call). */
  private readonly transaction: Transaction<(fn: () => unknown) => unknown>;

  constructor(
    protected readonly db: Database,
    /** Shared with the runner thread's connection, if any (see write-lock.ts). */
    readonly writeLock: WriteLock,
  ) {
    this.transaction = db.transaction((fn: () => unknown) => fn());
  }

  /**
   * Runs `fn` in a write transaction that takes the write lock at BEGIN (IMMEDIATE): a node's
   * runner thread has its own connection, and a deferred transaction that read first could fail
   * with SQLITE_BUSY_SNAPSHOT when the other connection committed in between. Waiting for the
   * lock happens before `fn` runs, so `fn` (and any handoff reservation it takes) runs once.
   * The process-wide WriteLock is taken first (see write-lock.ts): callers await the result.
   */
  protected write<T>(fn: () => T): T | Promise<T> {
    const state = { ran: false };
    const attempt = () =>
      this.writeLock.run(() =>
        this.transaction.immediate(() => {
          state.ran = true;
          return fn();
        }) as T,
      );
    try {
      const result = attempt();
      return result instanceof Promise ? result.catch((e) => this.waitForBusy(e, state, attempt)) : result;
    } catch (e) {
      return this.waitForBusy(e, state, attempt);
    }
  }

  /**
   * SQLite's busy handler sleeps on the calling thread, so a database held by another process
   * (a backup, the sqlite3 shell) would stall the event loop for the whole busy timeout. The
   * connection's own busy timeout is kept to a few milliseconds (index.ts), and a BEGIN refused
   * as busy is retried here, asynchronously, for up to SQLITE_BUSY_WAIT_MS: the node goes on
   * serving meanwhile. Only a refusal before `fn` ran is retried (`fn` may have side effects,
   * such as a handoff reservation); then the error goes to the caller (accept answers 503).
   */
  private async waitForBusy<T>(error: unknown, state: { ran: boolean }, attempt: () => T | Promise<T>): Promise<T> {
    const started = Date.now();
    let delay = 1;
    for (;;) {
      if (state.ran || !isBusy(error) || Date.now() - started >= SQLITE_BUSY_WAIT_MS) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 50);
      try {
        return await attempt();
      } catch (e) {
        error = e;
      }
    }
  }

  /** A prepared statement, compiled once per SQL text. */
  protected stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  async acceptEvents(inputs: AcceptInput[], handoff?: Handoff<AcceptInput>): Promise<Accepted[]> {
    const now = Date.now();
    return this.write(() =>
      inputs.map((input): Accepted => {
        if (input.idempotencyKey) {
          const seen = this.stmt(
            'SELECT event_id FROM idempotency_keys WHERE instance_id = ? AND key = ? AND created_at > ?',
          ).get(input.instanceId, input.idempotencyKey, now - IDEMPOTENCY_WINDOW_MS) as Row | undefined;
          if (seen) return { eventId: seen.event_id, duplicate: true };
        }
        // Handed off: the job is leased (one claim counted) and its event running from the start.
        const taken = handoff?.take(input) ?? false;
        // run() and the rowid, not RETURNING: a returning statement costs a fifth more here.
        const inserted = this.stmt(
          `INSERT INTO events (organization_id, instance_id, user_id, created_at, status, execution, method, url, callback_url, started_at)
           VALUES (?, ?, ?, ?, 'DISPATCHED', ?, ?, ?, ?, ?)`,
        ).run(
          input.organizationId,
          input.instanceId,
          input.userId,
          now,
          taken ? 'running' : 'dispatched',
          input.request.method,
          input.request.url,
          input.callbackUrl,
          taken ? now : null,
        );
        const id = Number(inserted.lastInsertRowid);
        this.stmt(
          'INSERT INTO jobs (event_id, instance_id, request, body, lease_owner, lease_until, attempts) VALUES (?, ?, ?, ?, ?, ?, ?)',
        ).run(
          id,
          input.instanceId,
          JSON.stringify({ ...input.request, organizationId: input.organizationId, userId: input.userId }),
          input.body,
          taken ? handoff!.owner : null,
          taken ? now + handoff!.leaseMs : 0,
          taken ? 1 : 0,
        );
        if (input.idempotencyKey) {
          this.stmt('INSERT OR REPLACE INTO idempotency_keys (instance_id, key, event_id, created_at) VALUES (?, ?, ?, ?)').run(
            input.instanceId,
            input.idempotencyKey,
            id,
            now,
          );
        }
        return taken ? { eventId: id, duplicate: false, job: handedOffJob(input, id) } : { eventId: id, duplicate: false };
      }),
    );
  }

  async claimJobs(owner: string, limit: number, leaseMs: number, perInstance: number): Promise<ClaimedJob[]> {
    const now = Date.now();
    return this.write(() => {
      const running = new Map<number, number>();
      for (const r of this.stmt('SELECT instance_id, count(*) AS n FROM jobs WHERE lease_until > 0 AND lease_until > ? GROUP BY instance_id').all(
        now,
      ) as Row[]) {
        running.set(r.instance_id, r.n);
      }
      // The oldest runnable jobs, a small window of them: each row read costs ~1 µs here, and a
      // window full of saturated instances' jobs falls back to the per-instance search below.
      const window = Math.min(256, Math.max(16, limit * 2));
      // "+lease_until" keeps the planner on the primary key: oldest runnable jobs first.
      const candidates = this.stmt(
        'SELECT event_id, instance_id FROM jobs WHERE +lease_until <= ? ORDER BY event_id LIMIT ?',
      ).all(now, window) as Row[];
      const chosen: number[] = [];
      const take = (rows: Row[]) => {
        for (const c of rows) {
          if (chosen.length >= limit) break;
          const n = running.get(c.instance_id) ?? 0;
          if (n >= perInstance) continue;
          running.set(c.instance_id, n + 1);
          chosen.push(c.event_id);
        }
      };
      take(candidates);
      if (chosen.length < limit && candidates.length === window) {
        // The window was full of saturated instances' backlogs: look per instance instead, so
        // one tenant's burst never hides the others' jobs.
        // Skip-scan over the distinct instances with jobs (index jobs_instance): O(instances · log n).
        const seen = new Set(chosen);
        const nextInstance = this.stmt('SELECT instance_id FROM jobs WHERE instance_id > ? ORDER BY instance_id LIMIT 1');
        const oldestReady = this.stmt(
          'SELECT event_id, instance_id FROM jobs WHERE instance_id = ? AND lease_until <= ? ORDER BY event_id LIMIT ?',
        );
        for (let r = nextInstance.get(-1) as Row | undefined; r && chosen.length < limit; r = nextInstance.get(r.instance_id) as Row | undefined) {
          const free = perInstance - (running.get(r.instance_id) ?? 0);
          if (free <= 0) continue;
          take((oldestReady.all(r.instance_id, now, free) as Row[]).filter((j) => !seen.has(j.event_id)));
        }
      }
      const lease = this.stmt(
        'UPDATE jobs SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE event_id = ? RETURNING *',
      );
      const start = this.stmt(
        "UPDATE events SET execution = 'running', started_at = ? WHERE id = ? AND execution IN ('dispatched', 'running')",
      );
      return chosen.map((eventId): ClaimedJob => {
        const r = lease.get(owner, now + leaseMs, eventId) as Row;
        // Not started: its event was cancelled (while its runner died): complete it, never run it.
        const cancelledMeanwhile = start.run(now, eventId).changes === 0;
        const request = JSON.parse(r.request);
        return {
          eventId,
          instanceId: r.instance_id,
          organizationId: request.organizationId,
          userId: request.userId,
          request: { method: request.method, url: request.url, headers: request.headers, ...(request.spool ? { spool: request.spool } : {}) },
          body: r.body ?? null,
          attempts: r.attempts - 1,
          ...(cancelledMeanwhile ? { cancelled: true } : {}),
        };
      });
    });
  }

  async renewLeases(owner: string, eventIds: number[], leaseMs: number): Promise<void> {
    const until = Date.now() + leaseMs;
    const renew = this.stmt('UPDATE jobs SET lease_until = ? WHERE event_id = ? AND lease_owner = ?');
    await this.write(() => {
      for (const id of eventIds) renew.run(until, id, owner);
    });
  }

  async releaseAllLeases(): Promise<number> {
    return this.write(() => {
      const n = this.db.prepare('UPDATE jobs SET lease_until = 0, lease_owner = NULL WHERE lease_until > 0').run().changes;
      this.db.prepare('UPDATE notifications SET lease_until = 0 WHERE lease_until > 0').run();
      // Change polls (store/changes.ts) too: the previous process's poller is gone.
      this.db.prepare('UPDATE change_schedules SET lease_owner = NULL, lease_until = 0 WHERE lease_owner IS NOT NULL').run();
      return n;
    });
  }

  async completeJobs(owner: string, outcomes: JobOutcome[], handoff?: Handoff<NotificationOffer>): Promise<DueNotification[]> {
    const now = Date.now();
    const handed: DueNotification[] = [];
    await this.write(() => {
      // Notification ids are assigned here (AUTOINCREMENT's next value: this transaction is the
      // only writer), so each body is written once, with its id in it.
      let lastId = (this.stmt("SELECT seq FROM sqlite_sequence WHERE name = 'notifications'").get() as Row | undefined)?.seq ?? 0;
      const next = () => ++lastId;
      for (const o of outcomes) {
        const taken = this.completeOne(o, now, next, handoff);
        if (taken) handed.push(taken);
      }
    });
    void owner;
    return handed;
  }

  /**
   * Stores one outcome (inside a write transaction): deletes its job, records the outcome and
   * progress, creates the notification (id from `nextId`) and the stored result. Returns the
   * notification when `handoff` took it. Nothing happens when the job is gone already: the
   * first completion wins (a job taken over after its lease expired may finish twice).
   */
  private completeOne(o: JobOutcome, now: number, nextId: () => number, handoff?: Handoff<NotificationOffer>): DueNotification | null {
    if (this.stmt('DELETE FROM jobs WHERE event_id = ?').run(o.eventId).changes === 0) return null;
    const ev = this.stmt(
      `UPDATE events SET status = 'CONSUMED', execution = ?, status_code = ?, finished_at = ?, response = ?, progress = ?
       WHERE id = ? RETURNING organization_id, instance_id, callback_url, created_at`,
    ).get(o.execution, o.statusCode, now, JSON.stringify(o.response ?? null), o.progress ? JSON.stringify(o.progress) : null, o.eventId) as Row;
    const sub = this.subscription(ev.organization_id, ev.callback_url);
    const queued = o.queue || !sub.active;
    const offer = { organizationId: ev.organization_id, subscriptionId: sub.id, url: ev.callback_url };
    const taken = !queued && handoff ? handoff.take(offer) : false;
    const id = nextId();
    const body = o.buildNotification(id);
    this.stmt(
      `INSERT INTO notifications (id, event_id, organization_id, subscription_id, body, status, due_at, lease_until, created_at, updated_at, traceparent, tracestate)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      id,
      o.eventId,
      ev.organization_id,
      sub.id,
      body,
      queued ? 'queued' : 'created',
      queued ? null : now,
      taken ? now + handoff!.leaseMs : 0,
      now,
      now,
      o.trace?.traceparent ?? null,
      o.trace?.tracestate ?? null,
    );
    if (o.result) {
      this.stmt(
        'INSERT OR REPLACE INTO results (event_id, organization_id, content_type, data, expires_at) VALUES (?, ?, ?, ?, ?)',
      ).run(o.eventId, ev.organization_id, o.result.contentType, o.result.data, o.result.expiresAt.getTime());
    }
    return taken
      ? {
          notificationId: id,
          eventId: o.eventId,
          instanceId: ev.instance_id,
          ...offer,
          body,
          attempts: 0,
          createdDate: new Date(now),
          acceptedDate: new Date(ev.created_at),
          traceparent: o.trace?.traceparent ?? null,
          tracestate: o.trace?.tracestate ?? null,
        }
      : null;
  }

  async cancelledAmong(eventIds: number[]): Promise<number[]> {
    if (!eventIds.length) return [];
    const rows = this.db
      .prepare(`SELECT id FROM events WHERE id IN (${eventIds.map(() => '?').join(', ')}) AND execution IN ('cancelling', 'cancelled')`)
      .all(...eventIds) as Row[];
    return rows.map((r) => r.id as number);
  }

  async recordProgress(eventId: number, progress: StoredProgress): Promise<void> {
    const update = this.stmt("UPDATE events SET progress = ? WHERE id = ? AND execution IN ('running', 'cancelling')");
    await this.write(() => update.run(JSON.stringify(progress), eventId));
  }

  async cancelEvent(organizationId: number, eventId: number, pending: (instanceId: number) => JobOutcome): Promise<CancelAnswer | null> {
    const now = Date.now();
    return this.write((): CancelAnswer | null => {
      const ev = this.stmt('SELECT instance_id, execution FROM events WHERE organization_id = ? AND id = ?').get(organizationId, eventId) as
        | Row
        | undefined;
      if (!ev) return null;
      const before = ev.execution as ExecutionState;
      if (!cancellable(before)) return { before, after: before };
      const job = this.stmt('SELECT lease_until, request FROM jobs WHERE event_id = ?').get(eventId) as Row | undefined;
      if (job && job.lease_until > now) {
        this.stmt("UPDATE events SET execution = 'cancelling' WHERE id = ?").run(eventId);
        return { before, after: 'cancelling' };
      }
      if (!job) return { before, after: before };
      // Waiting (or its runner died): it never runs.
      let lastId = (this.stmt("SELECT seq FROM sqlite_sequence WHERE name = 'notifications'").get() as Row | undefined)?.seq ?? 0;
      this.completeOne(pending(ev.instance_id), now, () => ++lastId);
      const spool = spooledBodyOf(job.request);
      return { before, after: 'cancelled', ...(spool ? { spool } : {}) };
    });
  }

  /** The organization's subscription for a callback URL, created on first use (read first: no write when it exists). */
  private subscription(organizationId: number, url: string): { id: number; active: boolean } {
    const r = (this.stmt('SELECT id, active FROM subscriptions WHERE organization_id = ? AND url = ?').get(organizationId, url) ??
      this.stmt('INSERT INTO subscriptions (organization_id, url) VALUES (?, ?) RETURNING id, active').get(organizationId, url)) as Row;
    return { id: r.id, active: r.active === 1 };
  }

  async claimNotifications(
    owner: string,
    limit: number,
    leaseMs: number,
    excludeSubscriptions: number[] = [],
  ): Promise<DueNotification[]> {
    const now = Date.now();
    const exclude = excludeSubscriptions.length
      ? ` AND n.subscription_id NOT IN (${excludeSubscriptions.map(() => '?').join(', ')})`
      : '';
    return this.write(() => {
      const rows = this.stmt(
        `SELECT n.id, n.event_id, n.organization_id, n.subscription_id, n.body, n.attempts, n.created_at, n.traceparent, n.tracestate,
                s.url, e.instance_id, e.created_at AS accepted_at
         FROM notifications n JOIN subscriptions s ON s.id = n.subscription_id JOIN events e ON e.id = n.event_id
         WHERE n.due_at <= ? AND n.lease_until <= ?${exclude} ORDER BY n.due_at LIMIT ?`,
      ).all(now, now, ...excludeSubscriptions, limit) as Row[];
      const lease = this.stmt('UPDATE notifications SET lease_until = ? WHERE id = ?');
      for (const r of rows) lease.run(now + leaseMs, r.id);
      return rows.map(toDueNotification);
    });
    void owner;
  }

  async releaseNotifications(notificationIds: number[]): Promise<void> {
    const release = this.stmt('UPDATE notifications SET lease_until = 0 WHERE id = ?');
    await this.write(() => {
      for (const id of notificationIds) release.run(id);
    });
  }

  async recordDeliveries(records: DeliveryRecord[]): Promise<void> {
    const now = Date.now();
    await this.write(() => {
      for (const d of records) {
        this.stmt('INSERT INTO deliveries (notification_id, at, url, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)').run(
          d.notificationId,
          d.at.getTime(),
          d.url,
          d.statusCode,
          d.error,
          Math.round(d.durationMs),
        );
        // A retry of a notification whose subscription was deactivated while it was in flight
        // is queued instead: it goes out again when the URL is reactivated, not before.
        const inactive =
          d.next.status === 'retry' &&
          (this.stmt('SELECT s.active FROM notifications n JOIN subscriptions s ON s.id = n.subscription_id WHERE n.id = ?').get(
            d.notificationId,
          ) as Row | undefined)?.active === 0;
        const next = inactive ? 'queued' : d.next.status;
        const dueAt = d.next.status === 'retry' && !inactive ? d.next.at.getTime() : null;
        const n = this.stmt(
          `UPDATE notifications SET status = ?, attempts = attempts + 1, due_at = ?, lease_until = 0, updated_at = ?
           WHERE id = ? RETURNING event_id, subscription_id`,
        ).get(next, dueAt, now, d.notificationId) as Row | undefined;
        if (!n) continue;
        if (d.next.status === 'delivered') {
          this.stmt("UPDATE events SET status = 'NOTIFIED' WHERE id = ?").run(n.event_id);
        } else if (d.next.status === 'queued' && d.next.deactivate) {
          this.stmt('UPDATE subscriptions SET active = 0 WHERE id = ?').run(n.subscription_id);
          this.stmt(
            "UPDATE notifications SET status = 'queued', due_at = NULL, updated_at = ? WHERE subscription_id = ? AND due_at IS NOT NULL AND lease_until <= ?",
          ).run(now, n.subscription_id, now);
        }
      }
    });
  }

  async nextNotificationDue(): Promise<Date | null> {
    const r = this.stmt('SELECT min(max(due_at, lease_until)) AS t FROM notifications WHERE due_at IS NOT NULL').get() as Row;
    return r.t == null ? null : new Date(r.t);
  }

  async getEvent(organizationId: number, eventId: number): Promise<EventRecord | null> {
    const r = this.stmt('SELECT * FROM events WHERE organization_id = ? AND id = ?').get(organizationId, eventId) as
      | Row
      | undefined;
    return r ? this.hydrate(r) : null;
  }

  private hydrate(r: Row): EventRecord {
    const n = this.stmt('SELECT * FROM notifications WHERE event_id = ?').get(r.id) as Row | undefined;
    const deliveries = n
      ? (this.stmt('SELECT * FROM deliveries WHERE notification_id = ? ORDER BY id').all(n.id) as Row[])
      : [];
    return toEvent(r, n, deliveries);
  }

  async listEvents(organizationId: number, options: EventListOptions): Promise<Page<EventRecord>> {
    const before = options.cursor ? decodeCursor(options.cursor) : Number.MAX_SAFE_INTEGER;
    const filters = [options.instanceId === undefined ? '' : ' AND instance_id = ?', options.status === undefined ? '' : ' AND status = ?'];
    const args = [organizationId, ...(options.instanceId === undefined ? [] : [options.instanceId]), ...(options.status === undefined ? [] : [options.status])];
    const rows = this.stmt(`SELECT * FROM events WHERE organization_id = ?${filters.join('')} AND id < ? ORDER BY id DESC LIMIT ?`).all(
      ...args,
      before,
      options.limit + 1,
    ) as Row[];
    const more = rows.length > options.limit;
    const page = rows.slice(0, options.limit);
    return {
      items: page.map((r) => this.hydrate(r)),
      next: more ? encodeCursor(page[page.length - 1].id) : null,
    };
  }

  private deliveryWhere(organizationId: number, filter: DeliveryFilter): { sql: string; args: unknown[] } {
    const parts = ['n.organization_id = ?'];
    const args: unknown[] = [organizationId];
    if (filter.status?.length) {
      parts.push(`n.status IN (${filter.status.map(() => '?').join(', ')})`);
      args.push(...filter.status);
    }
    if (filter.url !== undefined) {
      parts.push('s.url = ?');
      args.push(filter.url);
    }
    return { sql: parts.join(' AND '), args };
  }

  async listDeliveries(
    organizationId: number,
    filter: DeliveryFilter,
    options: { limit: number; cursor?: string },
  ): Promise<Page<DeliveryListing>> {
    const after = options.cursor ? decodeCursor(options.cursor) : 0;
    const where = this.deliveryWhere(organizationId, filter);
    const rows = this.db
      .prepare(
        `SELECT n.id, n.subscription_id, n.event_id, n.status, n.created_at, n.updated_at, s.url
         FROM notifications n JOIN subscriptions s ON s.id = n.subscription_id
         WHERE ${where.sql} AND n.id > ? ORDER BY n.id LIMIT ?`,
      )
      .all(...where.args, after, options.limit + 1) as Row[];
    return pageOf(rows, options.limit, toDeliveryListing);
  }

  async redeliver(organizationId: number, filter: DeliveryFilter): Promise<number> {
    const now = Date.now();
    const where = this.deliveryWhere(organizationId, { ...filter, status: ['queued'] });
    return this.write(() => {
      const subs = this.db
        .prepare(`SELECT id FROM subscriptions s WHERE s.organization_id = ?${filter.url !== undefined ? ' AND s.url = ?' : ''}`)
        .all(...(filter.url !== undefined ? [organizationId, filter.url] : [organizationId])) as Row[];
      const activate = this.stmt('UPDATE subscriptions SET active = 1 WHERE id = ?');
      for (const s of subs) activate.run(s.id);
      if (filter.status?.length && !filter.status.includes('queued')) return 0;
      return this.db
        .prepare(
          `UPDATE notifications SET status = 'created', due_at = ?, attempts = 0, updated_at = ? WHERE id IN (
             SELECT n.id FROM notifications n JOIN subscriptions s ON s.id = n.subscription_id WHERE ${where.sql})`,
        )
        .run(now, now, ...where.args).changes;
    });
  }

  async redeliverNotification(organizationId: number, notificationId: number): Promise<RedeliverOutcome> {
    const now = Date.now();
    return this.write((): RedeliverOutcome => {
      const n = this.stmt('SELECT status, subscription_id, lease_until FROM notifications WHERE id = ? AND organization_id = ?').get(
        notificationId,
        organizationId,
      ) as Row | undefined;
      if (!n) return { result: 'not_found' };
      if (n.status !== 'retry' && n.status !== 'queued') return { result: 'not_failed', status: n.status };
      if (n.lease_until > now) return { result: 'in_flight' };
      this.stmt('UPDATE subscriptions SET active = 1 WHERE id = ?').run(n.subscription_id);
      this.stmt("UPDATE notifications SET status = 'created', due_at = ?, attempts = 0, updated_at = ? WHERE id = ?").run(
        now,
        now,
        notificationId,
      );
      return { result: 'redelivered' };
    });
  }

  async getResult(organizationId: number, eventId: number): Promise<StoredResult | null> {
    const r = this.stmt('SELECT * FROM results WHERE organization_id = ? AND event_id = ? AND expires_at > ?').get(
      organizationId,
      eventId,
      Date.now(),
    ) as Row | undefined;
    return r ? { contentType: r.content_type, data: r.data, expiresAt: new Date(r.expires_at) } : null;
  }

  async purgeExpired(now: Date, idempotencyBefore: Date): Promise<void> {
    await this.write(() => {
      this.stmt('DELETE FROM results WHERE expires_at <= ?').run(now.getTime());
      this.stmt('DELETE FROM idempotency_keys WHERE created_at <= ?').run(idempotencyBefore.getTime());
      // Journals of finished jobs (issue 25): a job row lives until its outcome is stored.
      this.stmt('DELETE FROM job_journal WHERE event_id NOT IN (SELECT event_id FROM jobs)').run();
    });
  }

  async spooledJobFiles(): Promise<string[]> {
    const rows = this.stmt(
      `SELECT json_extract(request, '$.spool.file') AS file FROM jobs WHERE json_extract(request, '$.spool.file') IS NOT NULL`,
    ).all() as Row[];
    return rows.map((r) => r.file as string);
  }

  async asyncCounts(): Promise<{ jobs: number; events: number; notificationsPending: number }> {
    const jobs = (this.stmt('SELECT count(*) AS n FROM jobs').get() as Row).n;
    const events = (this.stmt('SELECT count(*) AS n FROM events').get() as Row).n;
    const pending = (this.stmt('SELECT count(*) AS n FROM notifications WHERE due_at IS NOT NULL').get() as Row).n;
    return { jobs, events, notificationsPending: pending };
  }
}
