/**
 * Moves SQLite's WAL checkpoints off the event loop. By default SQLite checkpoints inside the
 * COMMIT that pushes the WAL past 1,000 pages, so one request in every few hundred pays for
 * copying the WAL into the database file and fsyncing it (in a profile of the async pipeline:
 * a quarter of the store's time). The checkpointer runs them on a worker thread at most once
 * every `intervalMs` (FERRY_CHECKPOINT_INTERVAL), and only after commits (it waits on the write
 * lock's commit counter, so an idle node never wakes it); the node's own auto-checkpoint
 * threshold is raised (not disabled) so a stalled worker cannot let the WAL grow without bound.
 */
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';
import type { CheckpointerOptions } from './checkpoint-worker.js';

/** WAL pages after which the writer checkpoints itself anyway (≈ 40 MB at 4 KiB pages). */
export const BACKSTOP_PAGES = 10_000;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  /** `commits`: the node's write lock cell (write-lock.ts), advanced by every write transaction. */
  constructor(db: Database, file: string, commits: Int32Array, intervalMs = 250) {
    db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    const options: CheckpointerOptions = { file, intervalMs, commits };
    this.worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: options });
    this.worker.unref();
    // A failed worker only costs speed: the writer's auto-checkpoint takes over.
    this.worker.on('error', () => db.open && db.pragma('wal_autocheckpoint = 1000'));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Closes the worker's connection (before the node's own, which then checkpoints last). */
  async close(): Promise<void> {
    this.worker.ref(); // keeps the process alive until the worker has closed its connection
    this.worker.postMessage('close');
    await this.exited;
  }
}
