/**
 * SQLite implementation of change polling's store (store/changes.ts): schedules, leases,
 * snapshots, and change notifications written as events + notifications beside the snapshot,
 * in one transaction. On SQLite there is one node, so a lease only keeps this node's pollers
 * (the API thread's start-up reconciliation and the runner thread's poller) out of each other's
 * way; the same rules as PostgreSQL apply.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { ChangeStore, PollRecorded, PollSchedule, PollSlice, SnapshotEntry } from '../changes.js';

type Row = Record<string, any>;

/** Runs `fn` in one immediate write transaction (SqliteAsyncStore.write). */
export type Write = <T>(fn: () => T) => T | Promise<T>;

const toSchedule = (r: Row): PollSchedule => ({
  instanceId: r.instance_id,
  organizationId: r.organization_id,
  intervalMs: Number(r.interval_ms),
  watch: r.watch,
  baselined: Boolean(r.baselined),
  nextPollAt: new Date(Number(r.next_poll_at)),
  snapshotVersion: Number(r.snapshot_version),
});

export class SqliteChanges implements ChangeStore {
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly db: Database,
    private readonly write: Write,
  ) {}

  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  async schedulePolls(input: { instanceId: number; organizationId: number; intervalMs: number; watch: string }): Promise<void> {
    // Unchanged (start-up reconciliation of every instance): no write transaction at all.
    const seen = this.stmt('SELECT watch, interval_ms FROM change_schedules WHERE instance_id = ?').get(input.instanceId) as Row | undefined;
    if (seen && seen.watch === input.watch && Number(seen.interval_ms) === input.intervalMs) return;
    const now = Date.now();
    await this.write(() => {
      const current = this.stmt('SELECT watch, interval_ms, next_poll_at FROM change_schedules WHERE instance_id = ?').get(input.instanceId) as
        | Row
        | undefined;
      if (!current) {
        this.stmt('DELETE FROM change_snapshots WHERE instance_id = ?').run(input.instanceId);
        this.stmt(
          'INSERT INTO change_schedules (instance_id, organization_id, interval_ms, watch, baselined, next_poll_at, snapshot_version) VALUES (?, ?, ?, ?, 0, ?, ?)',
        ).run(input.instanceId, input.organizationId, input.intervalMs, input.watch, now, now * 1000);
        return;
      }
      if (current.watch !== input.watch) {
        // A new watch: forget the old snapshot; the next poll (now) records a new baseline.
        this.stmt('DELETE FROM change_snapshots WHERE instance_id = ?').run(input.instanceId);
        this.stmt('UPDATE change_schedules SET watch = ?, interval_ms = ?, baselined = 0, next_poll_at = ?, snapshot_version = snapshot_version + 1 WHERE instance_id = ?').run(
          input.watch,
          input.intervalMs,
          now,
          input.instanceId,
        );
      } else if (Number(current.interval_ms) !== input.intervalMs) {
        // A shorter interval applies from now, a longer one from the next poll.
        const next = Math.min(Number(current.next_poll_at), now + input.intervalMs);
        this.stmt('UPDATE change_schedules SET interval_ms = ?, next_poll_at = ? WHERE instance_id = ?').run(input.intervalMs, next, input.instanceId);
      }
    });
  }

  async unschedulePolls(instanceId: number): Promise<void> {
    await this.write(() => {
      this.stmt('DELETE FROM change_schedules WHERE instance_id = ?').run(instanceId);
      this.stmt('DELETE FROM change_snapshots WHERE instance_id = ?').run(instanceId);
    });
  }

  async scheduledInstances(): Promise<number[]> {
    return (this.stmt('SELECT instance_id FROM change_schedules').all() as Row[]).map((r) => r.instance_id);
  }

  async claimPolls(owner: string, limit: number, leaseMs: number, exclude: number[]): Promise<PollSchedule[]> {
    const now = Date.now();
    const skip = new Set(exclude);
    return this.write(() => {
      const rows = this.stmt(
        `SELECT * FROM change_schedules WHERE next_poll_at <= ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)
         ORDER BY next_poll_at LIMIT ?`,
      ).all(now, owner, now, limit + skip.size) as Row[];
      const chosen = rows.filter((r) => !skip.has(r.instance_id)).slice(0, limit);
      const lease = this.stmt('UPDATE change_schedules SET lease_owner = ?, lease_until = ? WHERE instance_id = ?');
      for (const r of chosen) lease.run(owner, now + leaseMs, r.instance_id);
      return chosen.map(toSchedule);
    });
  }

  async nextPollDue(owner: string, exclude: number[]): Promise<Date | null> {
    const r = this.stmt(
      `SELECT min(CASE WHEN lease_owner IS NULL OR lease_owner = ? THEN next_poll_at ELSE max(next_poll_at, lease_until) END) AS t
       FROM change_schedules WHERE instance_id NOT IN (SELECT value FROM json_each(?))`,
    ).get(owner, JSON.stringify(exclude)) as Row;
    return r.t == null ? null : new Date(Number(r.t));
  }

  async readSnapshot(instanceId: number, after: string | null, limit: number): Promise<SnapshotEntry[]> {
    const rows = (
      after === null
        ? this.stmt('SELECT path, directory, fingerprint FROM change_snapshots WHERE instance_id = ? ORDER BY path LIMIT ?').all(instanceId, limit)
        : this.stmt('SELECT path, directory, fingerprint FROM change_snapshots WHERE instance_id = ? AND path > ? ORDER BY path LIMIT ?').all(
            instanceId,
            after,
            limit,
          )
    ) as Row[];
    return rows.map((r) => ({
      path: r.path,
      directory: Boolean(r.directory),
      fingerprint: r.fingerprint,
    }));
  }

  async recordPoll(owner: string, instanceId: number, slice: PollSlice): Promise<PollRecorded | null> {
    const now = Date.now();
    return this.write(() => {
      const schedule = this.stmt('SELECT lease_owner, snapshot_version FROM change_schedules WHERE instance_id = ?').get(instanceId) as Row | undefined;
      // Deletions first: a path that changed kind is deleted and written again in one slice.
      if (!schedule || schedule.lease_owner !== owner) return null;
      const remove = this.stmt('DELETE FROM change_snapshots WHERE instance_id = ? AND path = ?');
      for (const p of slice.deletes) remove.run(instanceId, p);
      const upsert = this.stmt(
        'INSERT INTO change_snapshots (instance_id, path, directory, fingerprint) VALUES (?, ?, ?, ?) ON CONFLICT (instance_id, path) DO UPDATE SET directory = excluded.directory, fingerprint = excluded.fingerprint',
      );
      for (const e of slice.upserts) upsert.run(instanceId, e.path, e.directory ? 1 : 0, e.fingerprint);
      const ids: number[] = [];
      if (slice.notifications.length > 0) {
        const sub = (this.stmt('SELECT id, active FROM subscriptions WHERE organization_id = ? AND url = ?').get(slice.organizationId, slice.callbackUrl) ??
          this.stmt('INSERT INTO subscriptions (organization_id, url) VALUES (?, ?) RETURNING id, active').get(
            slice.organizationId,
            slice.callbackUrl,
          )) as Row;
        const queued = sub.active !== 1;
        for (const n of slice.notifications) {
          const { id } = this.stmt(
            `INSERT INTO events (organization_id, instance_id, user_id, created_at, status, execution, status_code, method, url, callback_url, started_at, finished_at, response)
             VALUES (?, ?, ?, ?, 'CONSUMED', 'completed', 200, 'POLL', ?, ?, ?, ?, ?) RETURNING id`,
          ).get(slice.organizationId, instanceId, slice.userId, now, slice.url, slice.callbackUrl, now, now, JSON.stringify(n.response)) as Row;
          this.stmt(
            `INSERT INTO notifications (event_id, organization_id, subscription_id, body, status, due_at, lease_until, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)`,
          ).run(id, slice.organizationId, sub.id, n.body(id), queued ? 'queued' : 'created', queued ? null : now, now, now);
          ids.push(id);
        }
      }
      let snapshotVersion = Number(schedule.snapshot_version);
      if (slice.upserts.length > 0 || slice.deletes.length > 0) {
        snapshotVersion++;
        this.stmt('UPDATE change_schedules SET snapshot_version = ? WHERE instance_id = ?').run(snapshotVersion, instanceId);
      }
      if (slice.finish) {
        const next = slice.finish.nextPollAt.getTime();
        this.stmt('UPDATE change_schedules SET baselined = 1, next_poll_at = ?, lease_until = ? WHERE instance_id = ?').run(
          next,
          next + slice.finish.leaseMs,
          instanceId,
        );
      } else if (slice.renewMs) {
        this.stmt('UPDATE change_schedules SET lease_until = ? WHERE instance_id = ?').run(now + slice.renewMs, instanceId);
      }
      return { eventIds: ids, snapshotVersion };
    });
  }

  async postponePoll(owner: string, instanceId: number, nextPollAt: Date, leaseMs: number): Promise<void> {
    await this.write(() => {
      this.stmt('UPDATE change_schedules SET next_poll_at = ?, lease_until = ? WHERE instance_id = ? AND lease_owner = ?').run(
        nextPollAt.getTime(),
        nextPollAt.getTime() + leaseMs,
        instanceId,
        owner,
      );
    });
  }

  async releasePolls(owner: string): Promise<void> {
    await this.write(() => {
      this.stmt('UPDATE change_schedules SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?').run(owner);
    });
  }
}
