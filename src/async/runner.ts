/**
 * The runner: claims jobs, replays each captured request through the same Fastify routes a
 * synchronous call takes (async/replay.ts, through an Executor: on this thread or the runner
 * thread), and records the outcome with the notification to send. There is no per-endpoint
 * async code: whatever the route does, the job does.
 *
 * Leases: a claimed job is leased for FERRY_LEASE ms and the lease is renewed by a heartbeat
 * while the job runs, so a long job is never taken twice while this runner lives; if the
 * process dies, the lease expires and another runner (or this one after a restart) runs it
 * again — at-least-once. Outcomes are completed in batches (one transaction per batch).
 *
 * Handoff: while the runner has free slots and nothing is known to wait in the store, a job
 * accepted on this node is leased to it in the accepting transaction and starts at once, and a
 * finished job's notification goes to the sender in the completing transaction — no claim in
 * between. Claims remain for everything else (a backlog, other nodes' jobs, expired leases).
 *
 * Progress and cancellation (issue 16): each running job gets an AbortController and a
 * ProgressTracker, handed down through its job context. `cancel(eventId)` aborts a job's signal
 * — called by this node's API, by a NOTIFY from another node's, or by the check each lease
 * heartbeat makes (`cancelledAmong`); a job that stops because of it ends `cancelled`, one that
 * finishes before it reaches a safe point ends as it finished.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { AcceptInput, Accepted, ClaimedJob, DueNotification, Handoff, JobOutcome, NotificationOffer } from '../store/async.js';
import type { Store } from '../store/store.js';
import { API_BASE } from '../http/api-base.js';
import { publicUrl } from '../config.js';
import { GroupCommit } from './accept.js';
import { ClaimLoop } from '../claim-loop.js';
import { Reservations, SlotCounts } from './reservations.js';
import type { Executor, RunControl } from './executor.js';
import { metrics } from '../observability/metrics.js';
import type { RunnerProgress } from '../observability/readiness.js';
import { TRACEPARENT, TRACESTATE } from '../observability/tracing.js';
import { crashPoint } from '../testing/crash-points.js';
import { ProgressTracker } from './progress.js';
import { cancelledOutcome, notificationBody } from './cancel.js';
import { bulkOutcome, isBulkRequest } from '../bulk/outcome.js';

/** Where finished jobs' notifications go: the node's sender. */
export interface NotificationSink {
  /** A handoff for new notifications, or undefined when they must wait for a claim. */
  offer(): Reservations<NotificationOffer, unknown> | undefined;
  /** Takes what the store handed off (settling the reservations) and wakes for the rest. */
  adopt(handoff: Reservations<NotificationOffer, unknown> | undefined, due: DueNotification[]): void;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * What a runner on the runner thread tells the node's thread, which hands it jobs from its
 * accepts (async/runner-thread.ts) and so keeps a copy of its slots.
 */
export interface RunnerWatch {
  /** A claimed job started (jobs handed off by `adopt` are counted by whoever handed them). */
  launched(instanceId: number): void;
  /** A job ended, however it was obtained: its slot is free. */
  finished(instanceId: number): void;
  /** Whether runnable jobs may wait in the store (no handoffs while they do). */
  backlog(value: boolean): void;
  /** The runner renewed its leases: it is alive (readiness, observability/readiness.ts). */
  renewed?(): void;
}

export class Runner {
  readonly owner = `runner-${crypto.randomBytes(6).toString('hex')}`;
  private readonly running = new Set<number>();
  /** Jobs running or reserved per instance (FERRY_INSTANCE_CONCURRENCY for handoffs). */
  private readonly perInstance = new SlotCounts<number>();
  private reserved = 0;
  /** Slots given back so far (finished jobs, unused reservations): tells a claim it raced them. */
  private finishedCount = 0;
  /** True when runnable jobs may be waiting in the store: handoffs stop until a claim drains them. */
  private backlogged = true;
  /** Set on a runner thread: its node's thread mirrors the slots (see RunnerWatch). */
  watch: RunnerWatch | null = null;
  /** Adopted jobs over their instance's limit (see adopt), oldest first; counted as running. */
  private readonly held: ClaimedJob[] = [];
  private heartbeat: NodeJS.Timeout | null = null;
  /** The stop signals and progress of the jobs running now. */
  private readonly controls = new Map<number, JobRun>();
  /** Cancels of jobs that are leased here but not started yet (held, or between claim and run). */
  private readonly cancelsBeforeStart = new Set<number>();
  private readonly loop: ClaimLoop;
  private readonly completer: GroupCommit<{ job: ClaimedJob; outcome: JobOutcome }, null>;
  private idle: Promise<void> | null = null;
  private idleResolve: (() => void) | null = null;
  /** Last time a claim, a lease renewal or a job's end showed the runner alive (readiness). */
  private lastProgressAt = Date.now();
  /** Set by a drain that ran out of time (see abandon). */
  private abandoned = false;
  /** Element key per instance id, for the metrics' `element` label (an instance never changes element). */
  private readonly elements = new Map<number, string>();

  constructor(
    private readonly executor: Executor,
    private readonly store: Store,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly notifications: NotificationSink,
    /** The fallback poll (FERRY_POLL_INTERVAL): wake-ups announce all work but a lost NOTIFY or an expired lease. */
    private readonly pollMs = config.pollMs,
  ) {
    this.loop = new ClaimLoop(
      () => this.claim(),
      async () => this.pollMs,
      (e) => this.log.error({ err: e }, 'claiming jobs failed'),
    );
    this.completer = new GroupCommit(async (finished) => {
      const handoff = this.notifications.offer();
      let due: DueNotification[] = [];
      try {
        due = await this.store.completeJobs(this.owner, finished.map((f) => f.outcome), handoff);
        // What the jobs held (an upload's spool file) is dropped before their webhooks can go:
        // a client told that a job ended finds nothing of it left behind.
        await Promise.all(finished.map((f) => this.dropHeld(f.job)));
      } finally {
        this.notifications.adopt(handoff, due);
      }
      return finished.map(() => null);
    });
  }

  /** What the readiness probe asks: is this runner making progress? */
  progress(): RunnerProgress {
    return { lastProgressAt: this.lastProgressAt, running: this.running.size, backlog: this.backlogged };
  }

  /**
   * A drain that ran out of time: `stop()` returns without waiting for the jobs still running,
   * whose ids are returned for the store to release (lifecycle/drain.ts). Their outcomes, should
   * they still come before the process exits, are dropped: another node runs them again.
   */
  abandon(): number[] {
    this.abandoned = true;
    const ids = [...this.running];
    this.idleResolve?.();
    return ids;
  }

  start(): void {
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.config.leaseMs / 3)));
    this.heartbeat.unref();
    this.wake();
  }

  /** Jobs running (or reserved) on this runner now; change polls give way to them (changes/poller.ts). */
  get activeJobs(): number {
    return this.running.size + this.reserved;
  }

  /** Look for work now: jobs may be waiting in the store (a NOTIFY from another node, a refused handoff). */
  wake(): void {
    this.backlog = true;
    this.loop.wake();
  }

  /** While paused the runner starts no claim; jobs running (and handed over) go on. */
  pause(value: boolean): void {
    this.loop.pause(value);
  }

  private get backlog(): boolean {
    return this.backlogged;
  }

  private set backlog(value: boolean) {
    if (value !== this.backlogged) this.watch?.backlog(value);
    this.backlogged = value;
  }

  /**
   * A handoff for jobs being accepted on this node, or undefined when they must queue behind
   * jobs already waiting (or the runner is stopping).
   */
  offer(): Handoff<AcceptInput> | undefined {
    if (this.backlog || this.loop.isStopped) return undefined;
    return new Reservations<AcceptInput, number>(this.owner, this.config.leaseMs, (input) => {
      if (this.running.size + this.reserved >= this.config.jobConcurrency) return null;
      if (this.perInstance.of(input.instanceId) >= this.config.instanceConcurrency) return null;
      this.perInstance.take(input.instanceId);
      this.reserved++;
      return input.instanceId;
    });
  }

  /** After an accept commits (or fails): runs the jobs handed off, and claims the others. */
  accepted(handoff: Handoff<AcceptInput> | undefined, accepted: Accepted[]): void {
    const jobs = accepted.flatMap((a) => (a.job ? [a.job] : []));
    if (handoff instanceof Reservations) {
      handoff.settle(jobs, (j) => j.instanceId, (instanceId) => this.unreserve(instanceId));
      this.reserved -= jobs.length;
    }
    for (const job of jobs) this.launch(job, true);
    const fresh = accepted.some((a) => !a.duplicate && !a.job);
    if (fresh) this.wake();
  }

  /**
   * Jobs another thread of this node leased to this runner in its accepting transaction (the
   * runner thread's runner, fed by the node's thread): they start at once.
   */
  adopt(jobs: ClaimedJob[]): void {
    for (const job of jobs) {
      if (this.perInstance.of(job.instanceId) < this.config.instanceConcurrency) {
        this.launch(job, false);
        continue;
      }
      // The other thread's copy of these slots had not yet seen a claim of this runner's: the
      // job is leased here already, so it waits (its lease renewed) for its instance's next slot.
      this.held.push(job);
      this.running.add(job.eventId);
    }
  }

  private unreserve(instanceId: number): void {
    this.reserved--;
    this.release(instanceId);
  }

  private release(instanceId: number): void {
    this.finishedCount++;
    this.perInstance.give(instanceId);
  }

  private launch(job: ClaimedJob, counted: boolean): void {
    if (!counted) this.perInstance.take(job.instanceId);
    this.running.add(job.eventId);
    void this.run(job);
  }

  /** Stops claiming and waits for running jobs to finish. */
  async stop(): Promise<void> {
    await this.loop.stop();
    if (this.running.size > 0 && !this.abandoned) {
      this.idle ??= new Promise((resolve) => (this.idleResolve = resolve));
      await this.idle;
    }
    // Only now: a drain may wait longer than a lease for running jobs, whose leases must hold.
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  /** One claim for the free slots; true when it filled them all. */
  private async claim(): Promise<boolean> {
    const free = this.config.jobConcurrency - this.running.size - this.reserved;
    if (free <= 0) {
      // Full: whatever is waiting stays waiting; the next finished job claims again.
      this.backlog = true;
      return false;
    }
    const finishedBefore = this.finishedCount;
    const jobs = await this.store.claimJobs(this.owner, free, this.config.leaseMs, this.config.instanceConcurrency);
    this.lastProgressAt = Date.now();
    for (const job of jobs) {
      this.launch(job, false);
      this.watch?.launched(job.instanceId);
    }
    // A short claim emptied the store of runnable jobs, unless an instance's limit cut it short:
    // then its jobs may still wait, and each finished job claims again. Jobs that finished while
    // the claim ran were still counted against their instance's limit by it: claim once more.
    const full = jobs.length === free;
    const raced = this.finishedCount !== finishedBefore;
    this.backlog = full || raced || this.perInstance.atLeast(this.config.instanceConcurrency).length > 0;
    return full || raced;
  }

  private async renew(): Promise<void> {
    if (this.running.size === 0) return;
    try {
      await this.store.renewLeases(this.owner, [...this.running], this.config.leaseMs);
      this.lastProgressAt = Date.now();
      this.watch?.renewed?.();
    } catch (e) {
      this.log.error({ err: e }, 'renewing leases failed');
    }
    await this.checkCancels();
  }

  /** Stops the job of event `eventId` if it runs here (a cancel: see cancel.ts). */
  cancel(eventId: number): void {
    const run = this.controls.get(eventId);
    if (run) {
      if (run.cancelled) return;
      run.cancelled = true;
      run.abort.abort();
      this.log.info({ eventId }, 'job cancelled; it stops at its next safe point');
    } else if (this.running.has(eventId)) {
      this.cancelsBeforeStart.add(eventId);
    }
  }

  /** Asks the store which running jobs were cancelled (anywhere), and stops them. */
  async checkCancels(): Promise<void> {
    if (this.running.size === 0) return;
    try {
      for (const eventId of await this.store.cancelledAmong([...this.running])) this.cancel(eventId);
    } catch (e) {
      this.log.error({ err: e }, 'checking for cancelled jobs failed');
    }
  }

  private async run(job: ClaimedJob): Promise<void> {
    const run: JobRun = {
      abort: new AbortController(),
      cancelled: false,
      tracker: new ProgressTracker((figures) => this.store.recordProgress(job.eventId, figures)),
    };
    this.controls.set(job.eventId, run);
    if (job.cancelled || this.cancelsBeforeStart.delete(job.eventId)) this.cancel(job.eventId);
    try {
      const outcome = await this.execute(job, run);
      if (this.abandoned) return; // released by a drain: another node runs it again
      crashPoint('after-write');
      await this.completer.add({ job, outcome });
      if (metrics.enabled) metrics.eventFinished(await this.elementOf(job), outcome.execution);
    } catch (e) {
      // Not completed: the lease expires and the job runs again.
      const traceId = job.request.headers[TRACEPARENT]?.split('-')[1];
      this.log.error({ err: e, eventId: job.eventId, traceId }, 'job could not be completed; it will be retried after its lease');
    } finally {
      this.lastProgressAt = Date.now();
      run.tracker.end();
      this.controls.delete(job.eventId);
      this.running.delete(job.eventId);
      this.release(job.instanceId);
      this.watch?.finished(job.instanceId);
      const waiting = this.held.findIndex((h) => h.instanceId === job.instanceId);
      if (waiting >= 0) {
        const [next] = this.held.splice(waiting, 1);
        this.launch(next, false);
      }
      if (this.loop.isStopped && this.running.size === 0) this.idleResolve?.();
      if (this.backlog) this.loop.wake();
    }
  }

  /** Drops what a completed job held (executor.finished); a failure is logged, never thrown. */
  private async dropHeld(job: ClaimedJob): Promise<void> {
    await this.executor.finished?.(job).catch((e: unknown) => this.log.warn({ err: e, eventId: job.eventId }, 'releasing a finished job failed'));
  }

  /** The element key of a job's instance ("unknown" once the instance is deleted). */
  private async elementOf(job: ClaimedJob): Promise<string> {
    const known = this.elements.get(job.instanceId);
    if (known) return known;
    const instance = await this.store.getInstance(job.organizationId, job.instanceId).catch(() => null);
    if (!instance) return 'unknown';
    if (this.elements.size > 10_000) this.elements.clear();
    this.elements.set(job.instanceId, instance.elementKey);
    return instance.elementKey;
  }

  private async execute(job: ClaimedJob, run: JobRun): Promise<JobOutcome> {
    // Cancelled before it started: it never runs.
    if (run.cancelled) return cancelledOutcome(job.eventId, job.instanceId, [], run.tracker.final(false));
    const control: RunControl = { signal: run.abort.signal, progress: run.tracker.report };
    const res = await this.executor.replay(job, control);
    const statusCode = res.statusCode;
    const ok = statusCode >= 200 && statusCode < 300;
    const { contentType, changes } = res;
    // A bulk job (issue 17) answers its summary in every case; its webhook carries it on top.
    if (isBulkRequest(job.request)) return bulkOutcome(job, res.statusCode, res.payload, run.cancelled, run.tracker.final(ok));
    // Stopped by the cancel (a job that finished first ends as it finished).
    if (!ok && run.cancelled) return cancelledOutcome(job.eventId, job.instanceId, changes, run.tracker.final(false));
    // Stopped for another reason (a drain): not an outcome — its lease expires and it runs again.
    if (!ok && run.abort.signal.aborted) throw new Error('the job was stopped before it finished; it runs again after its lease');
    let response: unknown;
    let result: JobOutcome['result'];
    if (ok && MUTATING.has(job.request.method.toUpperCase()) && job.request.url.includes('/hubs/documents/')) {
      response = { events: changes };
    } else if (contentType.includes('json') || !ok) {
      response = parseJson(res.payload.toString('utf8'));
    } else if (res.payload.length === 0 && !contentType) {
      // No body at all (nothing to fetch). An empty body WITH a type is an empty file: a result.
      response = {};
    } else {
      const expiresAt = new Date(Date.now() + this.config.resultRetentionMs);
      result = { contentType: contentType || 'application/octet-stream', data: res.payload, expiresAt };
      response = {
        contentType: result.contentType,
        size: res.payload.length,
        resultUrl: `${publicUrl(this.config)}${API_BASE}/instances/events/${job.eventId}/result`,
      };
    }
    const execution = ok ? 'completed' : 'failed';
    const traceparent = job.request.headers[TRACEPARENT];
    const tracestate = job.request.headers[TRACESTATE];
    const progress = run.tracker.final(ok);
    return {
      trace: traceparent ? { traceparent, ...(tracestate ? { tracestate } : {}) } : undefined,
      eventId: job.eventId,
      execution,
      statusCode,
      response,
      result,
      progress,
      buildNotification: (notificationId) => notificationBody(notificationId, job, execution, statusCode, response, progress),
    };
  }
}

/** One running job's stop signal and progress. */
interface JobRun {
  abort: AbortController;
  /** True once a cancel aborted it (a drain aborts without it: the job runs again elsewhere). */
  cancelled: boolean;
  tracker: ProgressTracker;
}

function parseJson(text: string): unknown {
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 1000) };
  }
}
