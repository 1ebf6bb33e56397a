/**
 * The runner thread (FERRY_RUNNER_THREAD=on, the default on SQLite and PostgreSQL): a node's runner and sender live on
 * a worker thread, so its main thread only answers API requests and accepts async ones, and a
 * burst of accepts is not slowed by running and delivering the jobs it creates.
 *
 * The thread is a Ferry node of its own without API — its own connection to the store (sharing
 * the node's SQLite write lock; on PostgreSQL its own pool and LISTEN connection), its own
 * Fastify app for replays, its own egress dispatcher — running the same Runner and Sender a
 * single-thread node runs. One thing crosses between the threads on
 * the hot path: the handoff. The node's thread leases a freshly accepted job to the thread's
 * runner in the accepting transaction when that runner has a free slot (ThreadSlots keeps a
 * copy of its slots, updated by the thread's reports) and posts the job over; everything else —
 * claims, leases, completion, delivery — happens on the thread as on any node.
 *
 * The thread may run at a lower OS priority (FERRY_RUNNER_NICE): accepting, which is what a
 * client waits for, then goes first when both compete for the CPU, and the jobs wait, stored.
 *
 * A runner thread that dies takes the process with it: a node that accepts jobs nobody runs
 * would be worse than a restart, which takes every lease over.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { AcceptInput, Accepted, ClaimedJob, Handoff } from '../store/async.js';
import type { LocalRunner } from './accept.js';
import { BusyApi, CHECK_MS, IN_FLIGHT } from './busy-api.js';
import { Reservations, SlotCounts } from './reservations.js';
import type { FamilyJson } from '../observability/metrics.js';
import type { RunnerProgress } from '../observability/readiness.js';
import type { DrainReport } from '../lifecycle/drain.js';

export interface RunnerThreadData {
  config: Config;
  /** The node's SQLite write lock (store/sqlite/write-lock.ts). */
  writeLock?: Int32Array;
}

/** Messages to the runner thread. */
export type ToRunnerThread =
  | { type: 'adopt'; jobs: ClaimedJob[] }
  | { type: 'wake'; what: 'jobs' | 'notifications' | 'changes' }
  | { type: 'pause'; value: boolean }
  /** Asks for the thread's metric families and runner progress (a scrape, a readiness probe). */
  | { type: 'probe'; id: number }
  /** Drains the thread's runner and sender until `deadline` (lifecycle/drain.ts). */
  | { type: 'drain'; deadline: number }
  | { type: 'cancel'; eventId: number }
  | { type: 'stop' };

/** What the thread's runner did in one event-loop turn (see RunnerWatch). */
export interface SlotReport {
  launched: number[];
  finished: number[];
  backlog?: boolean;
  /** The runner's progress when the report was sent (readiness reads the latest, asking nothing). */
  progress?: RunnerProgress;
}

/** Messages from the runner thread. */
export type FromRunnerThread =
  | { type: 'ready'; owner: string }
  | ({ type: 'slots' } & SlotReport)
  | { type: 'probe'; id: number; runner: RunnerProgress; families: FamilyJson[] }
  | { type: 'drained'; report: Omit<DrainReport, 'requestsFinished'> }
  | { type: 'stopped' };

/** A Buffer sent through a message port arrives as a plain Uint8Array: view it as a Buffer again. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The node thread's copy of the thread runner's slots: what it handed off, plus what the
 * thread reports it claimed, minus what it reports finished. It decides handoffs exactly as the
 * runner's own `offer` would (FERRY_JOB_CONCURRENCY, FERRY_INSTANCE_CONCURRENCY), and hands
 * none while the thread reports jobs waiting in the store, so a backlog still runs oldest-first.
 * The copy lags the thread by a message: a job the thread claimed in that instant is counted a
 * moment late, so a handoff may exceed an instance's limit; the thread's runner then holds the
 * job until that instance has a free slot (Runner.adopt), so the limit holds where jobs run.
 */
export class ThreadSlots implements LocalRunner {
  private readonly slots = new SlotCounts<number>();
  private backlog = true;
  /** The thread runner's progress as of its latest report. */
  progress: RunnerProgress = { lastProgressAt: Date.now(), running: 0, backlog: false };
  stopped = false;
  /** While the thread is paused (see RunnerThread.yieldWhileBusy) nothing is handed over. */
  paused = false;

  constructor(
    private readonly owner: string,
    private readonly config: Config,
    private readonly post: (m: ToRunnerThread) => void,
  ) {}

  offer(): Handoff<AcceptInput> | undefined {
    if (this.backlog || this.stopped || this.paused) return undefined;
    return new Reservations<AcceptInput, number>(this.owner, this.config.leaseMs, (input) => {
      if (this.slots.total >= this.config.jobConcurrency) return null;
      if (this.slots.of(input.instanceId) >= this.config.instanceConcurrency) return null;
      this.slots.take(input.instanceId);
      return input.instanceId;
    });
  }

  accepted(handoff: Handoff<AcceptInput> | undefined, accepted: Accepted[]): void {
    const jobs = accepted.flatMap((a) => (a.job ? [a.job] : []));
    if (handoff instanceof Reservations) handoff.settle(jobs, (j) => j.instanceId, (instanceId) => this.slots.give(instanceId));
    if (jobs.length > 0) this.post({ type: 'adopt', jobs });
    if (accepted.some((a) => !a.duplicate && !a.job)) {
      // Left in the store: no handoffs until the thread's claim has drained it.
      this.backlog = true;
      this.post({ type: 'wake', what: 'jobs' });
    }
  }

  /** Applies one report of the thread's runner. */
  apply(report: SlotReport): void {
    for (const id of report.launched) this.slots.take(id);
    for (const id of report.finished) this.slots.give(id);
    if (report.backlog !== undefined) this.backlog = report.backlog;
    if (report.progress) this.progress = report.progress;
  }
}

export class RunnerThread {
  private stopping = false;
  private monitor: NodeJS.Timeout | null = null;
  /** How many times the thread was paused for a saturated API (yieldWhileBusy). */
  pauses = 0;
  private probes = 0;
  private readonly probing = new Map<number, (answer: { runner: RunnerProgress; families: FamilyJson[] }) => void>();

  private constructor(
    private readonly worker: Worker,
    private readonly log: Logger,
    /** What the node's intake hands accepted jobs to. */
    readonly runner: ThreadSlots,
  ) {
    worker.on('message', (m: FromRunnerThread) => {
      if (m.type === 'slots') runner.apply(m);
      else if (m.type === 'probe') {
        this.probing.get(m.id)?.(m);
        this.probing.delete(m.id);
      }
    });
  }

  /**
   * Pauses the thread's claims while the API `server` is saturated (see busy-api.ts). Jobs
   * already running, and their webhooks, go on during a pause; nothing is handed over. The
   * sampler runs only while IN_FLIGHT requests or more were in flight at once lately: a quiet
   * or trickling API never wakes for it.
   */
  yieldWhileBusy(server: Server): void {
    let inFlight = 0;
    let peak = 0;
    const busy = new BusyApi(performance.now());
    let last = performance.eventLoopUtilization();
    const sample = () => {
      const current = performance.eventLoopUtilization();
      // Requests are answered within the turns between two readings: the most in flight at
      // once since the last reading, not the count now, says whether they queue.
      const paused = busy.observe({ at: performance.now(), utilization: performance.eventLoopUtilization(current, last).utilization, peakInFlight: peak });
      last = current;
      peak = inFlight;
      if (busy.quiet && this.monitor) {
        clearInterval(this.monitor);
        this.monitor = null;
      }
      if (paused === this.runner.paused || this.stopping) return;
      if (paused) {
        this.pauses++;
        this.log.debug({ pauses: this.pauses }, 'the API is saturated: the runner thread pauses its claims (FERRY_RUNNER_YIELD)');
      }
      this.runner.paused = paused;
      this.worker.postMessage({ type: 'pause', value: paused } satisfies ToRunnerThread);
    };
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      if (++inFlight > peak) peak = inFlight;
      res.once('close', () => inFlight--);
      if (inFlight >= IN_FLIGHT && !this.monitor && !this.stopping) {
        busy.restart();
        last = performance.eventLoopUtilization();
        this.monitor = setInterval(sample, CHECK_MS);
        this.monitor.unref();
      }
    });
  }

  /** Starts the thread for `config` and resolves once its runner and sender are running. */
  static start(config: Config, writeLock: Int32Array | undefined, log: Logger): Promise<RunnerThread> {
    const data: RunnerThreadData = { config, writeLock };
    const worker = new Worker(new URL('../runner-thread-main.js', import.meta.url), { workerData: data });
    return new Promise((resolve, reject) => {
      const fail = (e: unknown) => reject(e instanceof Error ? e : new Error(`the runner thread exited with code ${e} while starting`));
      worker.once('error', fail);
      worker.once('exit', fail);
      worker.once('message', (m: FromRunnerThread) => {
        worker.off('error', fail);
        worker.off('exit', fail);
        if (m.type !== 'ready') return reject(new Error(`the runner thread answered ${m.type} instead of ready`));
        const slots = new ThreadSlots(m.owner, config, (message) => worker.postMessage(message));
        const thread = new RunnerThread(worker, log, slots);
        worker.on('error', (e) => thread.died(e));
        worker.on('exit', (code) => thread.died(code));
        resolve(thread);
      });
    });
  }

  /**
   * The thread's metric families and its runner's progress, asked for by a scrape or a probe;
   * rejects when the thread does not answer within `timeoutMs` (its loop is stuck).
   */
  probe(timeoutMs: number): Promise<{ runner: RunnerProgress; families: FamilyJson[] }> {
    const id = ++this.probes;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.probing.delete(id);
        reject(new Error(`the runner thread did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.probing.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.worker.postMessage({ type: 'probe', id } satisfies ToRunnerThread);
    });
  }

  /** Drains the thread's runner and sender until `deadline` (lifecycle/drain.ts); `stop()` follows. */
  drain(deadline: number): Promise<Omit<DrainReport, 'requestsFinished'>> {
    this.runner.stopped = true;
    return new Promise((resolve) => {
      const onMessage = (m: FromRunnerThread) => {
        if (m.type !== 'drained') return;
        this.worker.off('message', onMessage);
        resolve(m.report);
      };
      this.worker.on('message', onMessage);
      this.worker.postMessage({ type: 'drain', deadline } satisfies ToRunnerThread);
    });
  }

  /** Look for work now (a redelivery asked for through the API, say). */
  wake(what: 'jobs' | 'notifications' | 'changes'): void {
    if (!this.stopping) this.worker.postMessage({ type: 'wake', what } satisfies ToRunnerThread);
  }

  /** Stops a cancelled job if the thread's runner runs it (issue 16; its heartbeat checks too). */
  cancel(eventId: number): void {
    if (!this.stopping) this.worker.postMessage({ type: 'cancel', eventId } satisfies ToRunnerThread);
  }

  /**
   * Ends the thread once its runner and sender have finished what they were running (the
   * node's API has closed first, so nothing more is handed over).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.runner.stopped = true;
    // A paused thread stays paused: stopping waits only for what is running, and resuming
    // would start claims just to finish them before the thread may end.
    if (this.monitor) clearInterval(this.monitor);
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    const stopped = new Promise<void>((resolve) => this.worker.on('message', (m: FromRunnerThread) => m.type === 'stopped' && resolve()));
    this.worker.postMessage({ type: 'stop' } satisfies ToRunnerThread);
    await Promise.race([exited, stopped]);
    // Its node has closed: end the thread even if some handle would keep it alive.
    await this.worker.terminate();
  }

  private died(reason: unknown): void {
    if (this.stopping) return;
    this.log.fatal({ err: reason instanceof Error ? reason : undefined, exitCode: reason }, 'the runner thread died; stopping the node');
    process.exit(1);
  }
}
