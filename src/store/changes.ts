/**
 * The durable half of change polling (src/changes/): each watched instance's poll schedule with
 * the lease that gives it to one node at a time, the snapshot of what its storage held at the
 * last poll, and the change notifications a poll creates. Part of the `Store` interface.
 *
 * Glossary
 * - schedule: one row per instance with `event.notification.enabled` — its interval, what it
 *   watches (`watch`, the JSON of path + recursive: a different watch starts a new baseline),
 *   when the next poll is due, and whether the baseline was recorded.
 * - lease: the node polling an instance. Claimed when a poll starts (`leaseMs` from now) and
 *   kept past the next due time by `leaseMs` when a poll ends, so the same node polls it next;
 *   another node claims it only once a lease has expired (its node died or stopped).
 * - snapshot: (path → fingerprint) of every object the last poll saw; the fingerprint is
 *   element-specific (localfs size/mtime/inode, S3 ETag/LastModified, SFTP size/mtime).
 * - change notification: an event (status CONSUMED, execution completed, method POLL) plus a
 *   notification row, exactly like a finished async job's, so the async sender delivers it —
 *   signatures, retries, failure policy, deliveries API and the events API all apply.
 *
 * `recordPoll` writes snapshot rows and notifications in ONE transaction, and only while the
 * caller still holds the lease: a change is announced exactly when the snapshot learns it, so
 * a crash at any moment neither loses nor repeats one (the next poll diffs against what was
 * committed).
 */

export interface PollSchedule {
  instanceId: number;
  organizationId: number;
  intervalMs: number;
  /** JSON of the watched path and recursion; a new value resets the snapshot. */
  watch: string;
  /** False until a poll has recorded the baseline (it announces nothing). */
  baselined: boolean;
  nextPollAt: Date;
  /**
   * Grows with every write to the snapshot (and when a new watch clears it), and starts from
   * the creation time in µs (a schedule created again never repeats an old value): a poller
   * that kept the snapshot in memory may use its copy while this still matches.
   */
  snapshotVersion: number;
}

/** One object of a snapshot. */
export interface SnapshotEntry {
  path: string;
  directory: boolean;
  /** Element-specific version of the object (compare for equality only). */
  fingerprint: string;
}

/** One webhook a poll slice creates; the store assigns the event id and calls `body(eventId)`. */
export interface ChangeNotificationInput {
  body: (eventId: number) => string;
  /** What the events API shows as the event's response. */
  response: unknown;
}

/** What one slice of a poll writes, atomically. */
export interface PollSlice {
  organizationId: number;
  userId: number;
  /** Where the notifications go (the instance's callback URL at poll time). */
  callbackUrl: string;
  /** Shown as the events' request URL (e.g. "/elements/api-v2/instances/7/polling?path=/inbox"). */
  url: string;
  upserts: SnapshotEntry[];
  deletes: string[];
  notifications: ChangeNotificationInput[];
  /** Set on the poll's last slice: schedule the next poll, mark the baseline recorded. */
  finish?: { nextPollAt: Date; leaseMs: number };
  /** On other slices: how long the lease is renewed for. */
  renewMs?: number;
}

export interface PollRecorded {
  eventIds: number[];
  snapshotVersion: number;
}

export interface ChangeStore {
  /**
   * Creates or updates an instance's schedule (due at once when new); a different `watch`
   * forgets the snapshot, so the next poll records a new baseline.
   */
  schedulePolls(input: { instanceId: number; organizationId: number; intervalMs: number; watch: string }): Promise<void>;
  /** Forgets an instance's schedule and snapshot (events disabled, instance deleted). */
  unschedulePolls(instanceId: number): Promise<void>;
  /** Instance ids that have a schedule (start-up reconciliation). */
  scheduledInstances(): Promise<number[]>;
  /**
   * Leases up to `limit` due schedules to `owner` for `leaseMs`: those not leased, leased by
   * `owner`, or whose lease expired — never those in `exclude` (polls `owner` is running).
   */
  claimPolls(owner: string, limit: number, leaseMs: number, exclude: number[]): Promise<PollSchedule[]>;
  /**
   * When `owner` should look again: the earliest due time among schedules it may claim (for
   * others' leased ones, when their lease expires), or null when there is none.
   */
  nextPollDue(owner: string, exclude: number[]): Promise<Date | null>;
  /**
   * One page of the instance's snapshot (empty before its baseline): up to `limit` entries
   * with paths after `after` (null: from the start), in path order.
   */
  readSnapshot(instanceId: number, after: string | null, limit: number): Promise<SnapshotEntry[]>;
  /**
   * Applies one slice in one transaction while `owner` holds the lease; returns the event ids
   * created and the snapshot's version after it, or null (nothing written) when the lease was
   * lost or the schedule is gone.
   */
  recordPoll(owner: string, instanceId: number, slice: PollSlice): Promise<PollRecorded | null>;
  /**
   * Ends a poll that failed (backend unreachable): nothing recorded, the next poll is due at
   * `nextPollAt`, and `owner` keeps the lease until `leaseMs` after it.
   */
  postponePoll(owner: string, instanceId: number, nextPollAt: Date, leaseMs: number): Promise<void>;
  /** Gives back every lease of `owner` (its node stops): other nodes may poll at once. */
  releasePolls(owner: string): Promise<void>;
}
