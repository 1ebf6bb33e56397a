/**
 * The poller: finds changes in watched instances' storage and turns them into notifications
 * that the async sender delivers (signed, retried, listed as events) — there is no second
 * sender. It runs on a thread of its own at nice 19 (changes/poller-thread.ts, the default),
 * or with FERRY_POLLER_THREAD=off beside the node's runner and sender (on SQLite: on the runner
 * thread), never on the API's thread.
 *
 * Owns: when to poll and what a poll writes. May import: store/ (ChangeStore), instances/
 * (live elements, clear configuration), changes/*, config.ts, claim-loop.ts (its wake/claim
 * cycle is the runner's and the sender's) — not async/ or http/: what it
 * writes reaches the sender through the store.
 *
 * Scheduling: the schedules live in the store (store/changes.ts). The poller keeps ONE timer,
 * armed for the earliest due time among the schedules it may claim (`nextPollDue`), and sleeps
 * without one when nothing is scheduled; `wake()` (an instance created or changed on this
 * node, a NOTIFY from another) makes it look again. It never ticks.
 *
 * One poll: claim (lease) → rescan (scan.ts, bounded slices, lease renewed between them) →
 * read the snapshot (pages of SNAPSHOT_PAGE) → diff (diff.ts) → write. Writes go in slices of WRITE_SLICE changes, each
 * ONE transaction holding those changes' snapshot rows and their notifications (10 changes
 * each), so a crash between slices loses and repeats nothing: the next poll diffs against what
 * was committed. The first poll records a baseline and announces nothing. A failed rescan
 * (backend down) records nothing and is tried again after the interval.
 *
 * Cost: the snapshot of an instance this node polls is kept in memory between its polls (up to
 * MAX_CACHED_ENTRIES in all), used while the store's snapshot version still matches, so an
 * unchanged poll reads the backend's listing and nothing else. Between slices a poll yields to
 * the node's async jobs: while any is running it waits (up to MAX_YIELD_MS per slice), so
 * polling slows down under async load instead of slowing the jobs.
 *
 * Cluster: a claim leases the instance to this node; finishing keeps the lease FERRY_POLLER_LEASE
 * past the next due time, so the same node polls it next and another node claims it only when
 * this one stopped polling (died) for that long.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { InstanceService } from '../instances/service.js';
import type { PollSchedule, SnapshotEntry } from '../store/changes.js';
import type { Store } from '../store/store.js';
import { diff, snapshotWrites } from './diff.js';
import { MAX_EVENTS_PER_NOTIFICATION, notificationsFor } from './message.js';
import { scan } from './scan.js';
import { parseChangeSettings, watchKey } from './settings.js';
import { ClaimLoop } from '../claim-loop.js';

/** Changes written per transaction (a multiple of the notification size). */
export const WRITE_SLICE = 50 * MAX_EVENTS_PER_NOTIFICATION;

/** Snapshot rows read per store call. */
export const SNAPSHOT_PAGE = 5000;

/** Snapshot entries kept in memory across polls, all instances together (≈ 200 bytes each). */
export const MAX_CACHED_ENTRIES = 250_000;

/** Longest a poll waits between two slices for the node's async jobs to finish (see `yieldToJobs`). */
export const MAX_YIELD_MS = 50;

export class Poller {
  /** Names the process, so an operator (or a test) can tell which node holds a lease. */
  readonly owner = `poller-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  private readonly running = new Map<number, Promise<void>>();
  /** Snapshots of the instances this node polls, by instance, with the version they match. */
  private readonly cache = new Map<number, { version: number; entries: Map<string, SnapshotEntry> }>();
  private cachedEntries = 0;
  private stopped = false;
  /** Set by a failed claim: the next look is FERRY_POLLER_MIN_INTERVAL away, not at the next due time. */
  private failed = false;
  /**
   * Claims due polls; one timer for the next due one, or none when nothing is scheduled (or
   * every slot is busy: a finishing poll wakes it). Its stop waits for a claim in progress, so a
   * lease claimed then is given back by `stop`.
   */
  private readonly loop = new ClaimLoop(
    () => this.claimDue(),
    () => this.nextLook(),
    (e) => {
      this.failed = true;
      this.log.error({ err: e }, 'looking for due change polls failed; looking again in a while');
    },
  );
  /** Polls finished, and how long the last one took (ms), for benchmarks and metrics. */
  polls = 0;
  lastPollMs = 0;

  constructor(
    private readonly store: Store,
    private readonly instances: InstanceService,
    private readonly config: Config,
    private readonly log: Logger,
    /** Called when a poll created notifications: wakes the node's sender. */
    private readonly notified: () => void,
    /** Async jobs running on this node now (polls give way to them between slices). */
    private readonly jobsRunning: () => number = () => 0,
  ) {}

  start(): void {
    this.wake();
  }

  /** Look at the schedules now (one look per event-loop turn however many ask). */
  wake(): void {
    this.loop.wake();
  }

  /**
   * No more polls: waits for the ones running, then gives every lease back, so another node
   * (or this one restarted) polls at once instead of after FERRY_POLLER_LEASE.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop.stop();
    await Promise.allSettled([...this.running.values()]);
    await this.store.releasePolls(this.owner).catch((e) => this.log.warn({ err: e }, 'giving change poll leases back failed; they expire'));
  }

  /** Claims the due polls for the free slots and starts them; true when it filled them all. */
  private async claimDue(): Promise<boolean> {
    const free = this.config.pollerConcurrency - this.running.size;
    if (free <= 0) return false;
    const due = await this.store.claimPolls(this.owner, free, this.config.pollerLeaseMs, [...this.running.keys()]);
    if (this.stopped) return false; // claimed during the stop: stop() gives the leases back
    for (const schedule of due) this.launch(schedule);
    return due.length === free;
  }

  /** Milliseconds until the next due poll this node may claim, or null for no timer. */
  private async nextLook(): Promise<number | null> {
    if (this.failed) {
      this.failed = false;
      return this.config.pollerMinIntervalMs;
    }
    if (this.running.size >= this.config.pollerConcurrency) return null; // a finishing poll looks again
    const next = await this.store.nextPollDue(this.owner, [...this.running.keys()]);
    return next === null ? null : Math.max(0, next.getTime() - Date.now());
  }

  private launch(schedule: PollSchedule): void {
    const started = performance.now();
    const run = this.poll(schedule)
      .catch((e) => this.log.error({ err: e, instanceId: schedule.instanceId }, 'change poll failed'))
      .finally(() => {
        this.running.delete(schedule.instanceId);
        this.lastPollMs = performance.now() - started;
        this.polls++;
        this.wake();
      });
    this.running.set(schedule.instanceId, run);
  }

  private async poll(schedule: PollSchedule): Promise<void> {
    const { instanceId, organizationId } = schedule;
    const instance = await this.store.getInstance(organizationId, instanceId);
    const settings = instance
      ? parseChangeSettings(this.instances.unseal(instance), this.config.pollerMinIntervalMs, this.config.maxPathLength)
      : null;
    if (!instance || !settings?.enabled || !settings.callbackUrl) {
      this.forget(instanceId);
      await this.store.unschedulePolls(instanceId);
      return;
    }
    const nextPollAt = () => new Date(Date.now() + settings.intervalMs);
    if (instance.disabled || watchKey(settings.watch) !== schedule.watch) {
      // Disabled: no backend calls, and changes made meanwhile are announced once it is enabled
      // again. A watch that differs from the schedule's is being changed right now (the update
      // re-schedules it, or start-up reconciliation does): look again in a second.
      const next = instance.disabled ? nextPollAt() : new Date(Date.now() + 1000);
      await this.store.postponePoll(this.owner, instanceId, next, this.config.pollerLeaseMs);
      return;
    }
    const leaseMs = this.config.pollerLeaseMs;
    let renewedAt = Date.now();
    let lost = false;
    const renew = async () => {
      await this.yieldToJobs();
      if (Date.now() - renewedAt < leaseMs / 3) return;
      renewedAt = Date.now();
      const ok = await this.store.recordPoll(this.owner, instanceId, this.slice(instance, settings, [], { renewMs: leaseMs }));
      if (ok === null) lost = true;
    };
    const polledAt = new Date();
    let entries;
    try {
      entries = await scan(this.instances.element(instance), settings.watch, renew);
    } catch (e) {
      this.log.warn({ err: e, instanceId }, 'rescanning for changes failed; trying again after the interval');
      await this.store.postponePoll(this.owner, instanceId, nextPollAt(), leaseMs);
      return;
    }
    if (lost || this.stopped) return;
    if (!schedule.baselined) this.forget(instanceId);
    const cached = this.cache.get(instanceId);
    const previous = cached && cached.version === schedule.snapshotVersion ? cached.entries : await this.snapshot(instanceId, renew);
    if (lost || this.stopped) return this.forget(instanceId);
    const changes = diff(previous, entries);
    const announce = schedule.baselined;
    let created = 0;
    for (let i = 0; i === 0 || i < changes.length; i += WRITE_SLICE) {
      const part = changes.slice(i, i + WRITE_SLICE);
      const last = i + WRITE_SLICE >= changes.length;
      const notifications = announce
        ? notificationsFor(part, { instanceId, elementKey: instance.elementKey, watch: settings.watch, polledAt })
        : [];
      const slice = this.slice(instance, settings, part, last ? { finish: { nextPollAt: nextPollAt(), leaseMs } } : { renewMs: leaseMs }, notifications);
      const recorded = await this.store.recordPoll(this.owner, instanceId, slice);
      if (recorded === null) return this.forget(instanceId); // the lease was lost (this node was too slow): the new holder carries on
      for (const path of slice.deletes) previous.delete(path);
      for (const entry of slice.upserts) previous.set(entry.path, entry);
      this.remember(instanceId, recorded.snapshotVersion, previous);
      created += recorded.eventIds.length;
      if (recorded.eventIds.length > 0) this.notified();
      if (!last) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        await this.yieldToJobs();
      }
    }
    if (changes.length > 0) {
      this.log.debug({ instanceId, changes: changes.length, notifications: created, baseline: !announce }, 'change poll recorded');
    }
  }

  /** Keeps an instance's snapshot in memory while the cache has room. */
  private remember(instanceId: number, version: number, entries: Map<string, SnapshotEntry>): void {
    const old = this.cache.get(instanceId);
    const others = this.cachedEntries - (old?.entries.size ?? 0);
    if (others + entries.size > MAX_CACHED_ENTRIES) return this.forget(instanceId);
    this.cache.set(instanceId, { version, entries });
    this.cachedEntries = others + entries.size;
  }

  private forget(instanceId: number): void {
    const old = this.cache.get(instanceId);
    if (!old) return;
    this.cache.delete(instanceId);
    this.cachedEntries -= old.entries.size;
  }

  /** Waits (a few ms at a time, MAX_YIELD_MS at most) while the node's async jobs run. */
  private async yieldToJobs(): Promise<void> {
    const until = Date.now() + MAX_YIELD_MS;
    while (this.jobsRunning() > 0 && Date.now() < until && !this.stopped) {
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
    }
  }

  /** The stored snapshot, read a page at a time (yielding and renewing the lease between pages). */
  private async snapshot(instanceId: number, between: () => Promise<void>): Promise<Map<string, SnapshotEntry>> {
    const out = new Map<string, SnapshotEntry>();
    let after: string | null = null;
    for (;;) {
      const page = await this.store.readSnapshot(instanceId, after, SNAPSHOT_PAGE);
      for (const e of page) out.set(e.path, e);
      if (page.length < SNAPSHOT_PAGE) return out;
      after = page[page.length - 1].path;
      await new Promise<void>((resolve) => setImmediate(resolve));
      await between();
    }
  }

  private slice(
    instance: { id: number; organizationId: number; userId: number },
    settings: { callbackUrl?: string; watch: { path: string; recursive: boolean } },
    changes: ReturnType<typeof diff>,
    end: { finish?: { nextPollAt: Date; leaseMs: number }; renewMs?: number },
    notifications: ReturnType<typeof notificationsFor> = [],
  ) {
    const writes = snapshotWrites(changes);
    return {
      organizationId: instance.organizationId,
      userId: instance.userId,
      callbackUrl: settings.callbackUrl ?? '',
      url: `polling:${settings.watch.path}${settings.watch.recursive ? '' : ' (not recursive)'}`,
      upserts: writes.upserts,
      deletes: writes.deletes,
      notifications,
      ...end,
    };
  }
}
