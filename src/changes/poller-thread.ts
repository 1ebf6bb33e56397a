/**
 * The poller thread (FERRY_POLLER_THREAD=on, the default): a node's change poller runs on a
 * worker thread of its own at the lowest OS priority (FERRY_POLLER_NICE, 19), with its own
 * store connection (sharing the node's SQLite write lock) and its own live elements. The
 * localfs tree workers it starts inherit that priority. So when the CPU is contended, rescans
 * get what the API and the async jobs leave (on Linux a nice-19 thread weighs 15 against the
 * runner thread's 110 and the API's 1024): polling slows down, async latency does not.
 *
 * Owns: starting, waking and stopping that thread. May import: config.ts, changes/ types.
 * Messages: the node wakes the poller (an instance was created or changed); the thread says
 * when a poll created notifications (the node wakes its sender) and when it has stopped.
 *
 * A poller thread that dies is started again a second later (its leases expire or are retaken):
 * the node keeps answering and running jobs meanwhile, and no change is lost (the snapshot in
 * the store is the truth).
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config.js';

export interface PollerThreadData {
  config: Config;
  /** The node's SQLite write lock (store/sqlite/write-lock.ts). */
  writeLock?: Int32Array;
}

export type ToPollerThread = { type: 'wake' } | { type: 'stop' };
export type FromPollerThread = { type: 'ready' } | { type: 'notified' } | { type: 'stopped' };

export class PollerThread {
  private worker: Worker | null = null;
  private stopping = false;
  private restart: NodeJS.Timeout | null = null;

  private constructor(
    private readonly data: PollerThreadData,
    private readonly log: Logger,
    /** A poll created notifications: wake the node's sender. */
    private readonly notified: () => void,
  ) {}

  /**
   * Starts the thread; resolves once its poller runs, or once its first start failed (say the
   * database refused a connection): it is then started again a second later, and so on.
   */
  static async start(data: PollerThreadData, log: Logger, notified: () => void): Promise<PollerThread> {
    const thread = new PollerThread(data, log, notified);
    await thread.spawn().catch((e) => thread.failed(e));
    return thread;
  }

  private spawn(): Promise<void> {
    const worker = new Worker(new URL('../poller-thread-main.js', import.meta.url), { workerData: this.data });
    this.worker = worker;
    return new Promise((resolve, reject) => {
      const fail = (e: unknown) => reject(e instanceof Error ? e : new Error(`the poller thread exited with code ${e} while starting`));
      worker.once('error', fail);
      worker.once('exit', fail);
      worker.on('message', (m: FromPollerThread) => {
        if (m.type === 'notified') this.notified();
        if (m.type !== 'ready') return;
        worker.off('error', fail);
        worker.off('exit', fail);
        worker.on('error', (e) => this.log.error({ err: e }, 'the poller thread failed'));
        worker.on('exit', (code) => this.died(code));
        resolve();
      });
    });
  }

  /** Look at the schedules now. */
  wake(): void {
    if (!this.stopping) this.worker?.postMessage({ type: 'wake' } satisfies ToPollerThread);
  }

  /** Ends the thread after its polls in progress (their leases are given back). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restart) clearTimeout(this.restart);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const stopped = new Promise<void>((resolve) => worker.on('message', (m: FromPollerThread) => m.type === 'stopped' && resolve()));
    worker.postMessage({ type: 'stop' } satisfies ToPollerThread);
    await Promise.race([exited, stopped]);
    await worker.terminate();
  }

  private died(code: number): void {
    this.worker = null;
    if (this.stopping) return;
    this.log.error({ exitCode: code }, 'the poller thread died; starting it again in 1 s');
    this.again();
  }

  private failed(e: unknown): void {
    this.worker = null;
    if (this.stopping) return;
    this.log.error({ err: e }, 'the poller thread could not start; trying again in 1 s');
    this.again();
  }

  private again(): void {
    this.restart = setTimeout(() => {
      this.restart = null;
      if (!this.stopping) this.spawn().catch((e) => this.failed(e));
    }, 1000);
    this.restart.unref();
  }
}
