/**
 * The runner thread (FERRY_RUNNER_THREAD=on, SQLite nodes): a node that runs jobs replays them
 * and makes its webhook attempts on a worker thread, so answering API requests and running jobs
 * use two cores.
 * The thread is a Ferry node of its own without API, runner or sender — its own Fastify app for
 * replays, its own connection to the store, its own egress dispatcher — serving the Executor
 * interface over the message port. Claims, leases, handoffs, completion and delivery records stay
 * with the Runner and Sender on the node's main thread, so the store keeps one writer per node
 * on the hot path and every guarantee of the single-thread design holds unchanged.
 *
 * A runner thread that dies takes the process with it: a node that accepts jobs nobody runs
 * would be worse than a restart, which takes every lease over.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ClaimedJob } from '../store/async.js';
import type { DeliveryOutcome, DeliveryTarget } from './deliver.js';
import type { Executor, Replayed } from './executor.js';

export interface RunnerThreadData {
  config: Config;
  /** The node's SQLite write lock (store/sqlite/write-lock.ts). */
  writeLock?: Int32Array;
}

/** Messages to the runner thread. */
export type ToRunnerThread =
  | { type: 'replay'; id: number; job: ClaimedJob }
  | { type: 'deliver'; id: number; target: DeliveryTarget; timeoutMs: number }
  | { type: 'stop' };

/** Messages from the runner thread. */
export type FromRunnerThread =
  | { type: 'ready' }
  | { type: 'done'; id: number; value: Replayed | DeliveryOutcome }
  | { type: 'failed'; id: number; message: string }
  | { type: 'stopped' };

/** A Buffer sent through a message port arrives as a plain Uint8Array: view it as a Buffer again. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

type Pending = { resolve: (v: any) => void; reject: (e: unknown) => void };

export class RunnerThread implements Executor {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stopping = false;

  private constructor(
    private readonly worker: Worker,
    private readonly log: Logger,
  ) {
    worker.on('message', (m: FromRunnerThread) => this.answer(m));
  }

  /** Starts the thread for `config` and resolves once it can take work. */
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
        const thread = new RunnerThread(worker, log);
        worker.on('error', (e) => thread.died(e));
        worker.on('exit', (code) => thread.died(code));
        resolve(thread);
      });
    });
  }

  async replay(job: ClaimedJob): Promise<Replayed> {
    const replayed = await this.call<Replayed>((id) => ({ type: 'replay', id, job }));
    return { ...replayed, payload: asBuffer(replayed.payload) };
  }

  deliver(target: DeliveryTarget, timeoutMs: number): Promise<DeliveryOutcome> {
    return this.call((id) => ({ type: 'deliver', id, target, timeoutMs }));
  }

  /** Ends the thread once the work sent to it is done (the runner and sender stop first). */
  async stop(): Promise<void> {
    this.stopping = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    const stopped = new Promise<void>((resolve) => this.worker.on('message', (m: FromRunnerThread) => m.type === 'stopped' && resolve()));
    this.worker.postMessage({ type: 'stop' } satisfies ToRunnerThread);
    await Promise.race([exited, stopped]);
    // Its node has closed: end the thread even if some handle would keep it alive.
    await this.worker.terminate();
  }

  private call<T>(message: (id: number) => ToRunnerThread): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(message(id));
    });
  }

  private answer(m: FromRunnerThread): void {
    if (m.type !== 'done' && m.type !== 'failed') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.type === 'done') p.resolve(m.value);
    else p.reject(new Error(m.message));
  }

  private died(reason: unknown): void {
    for (const p of this.pending.values()) p.reject(new Error('the runner thread died'));
    this.pending.clear();
    if (this.stopping) return;
    this.log.fatal({ err: reason instanceof Error ? reason : undefined, exitCode: reason }, 'the runner thread died; stopping the node');
    process.exit(1);
  }
}
