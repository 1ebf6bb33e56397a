/**
 * A small pool of worker threads that run localfs folder copies (copy-worker.ts), so a big copy
 * runs at `cp -r` speed without blocking the event loop. Shared by every localfs instance of
 * the process; started by the first `ping`/`copy` (a worker takes a few hundred milliseconds
 * to boot on a small machine, so it is warmed before it is needed), and unreferenced while
 * idle so it never keeps the process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { backendFailed } from '../../errors.js';
import type { CopyReply, CopyRequest } from './copy-worker.js';

interface Pending {
  resolve(): void;
  reject(e: unknown): void;
}

class CopyWorker {
  readonly pending = new Map<number, Pending>();
  private readonly worker: Worker;

  constructor(private readonly onGone: (w: CopyWorker) => void) {
    this.worker = new Worker(new URL('./copy-worker.js', import.meta.url));
    this.worker.on('message', (reply: CopyReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker.unref();
      if (reply.code === undefined) p.resolve();
      else p.reject(Object.assign(new Error(`copy failed: ${reply.code}`), { code: reply.code }));
    });
    const fail = (cause: unknown) => {
      this.onGone(this);
      for (const p of this.pending.values()) {
        p.reject(backendFailed('the local file system copy stopped unexpectedly', { providerMessage: 'copy worker exited', cause }));
      }
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`copy worker exited with code ${code}`)));
    // After the listeners: adding a 'message' listener references the worker again.
    this.worker.unref();
  }

  run(request: CopyRequest): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(request);
    });
  }
}

const SIZE = Math.max(1, Math.min(2, availableParallelism()));
const workers: CopyWorker[] = [];
let nextId = 1;

function gone(w: CopyWorker): void {
  const i = workers.indexOf(w);
  if (i >= 0) workers.splice(i, 1);
}

/** Starts the pool's workers if they are not running yet. */
export function warmCopyPool(): void {
  while (workers.length < SIZE) workers.push(new CopyWorker(gone));
}

/**
 * Copies the folder `from` to `to` (absolute host paths, already confined by the caller) on
 * the least busy worker. Rejects with an Error carrying the errno `code` of the failure.
 */
export function copyTreeOffThread(from: string, to: string): Promise<void> {
  warmCopyPool();
  const worker = workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  return worker.run({ id: nextId++, from, to });
}
