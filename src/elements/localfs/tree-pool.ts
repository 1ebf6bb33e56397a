/**
 * A small pool of worker threads (tree-worker.ts) that read folders and copy trees for every
 * localfs instance of the process, so big trees are handled with fast blocking calls without
 * blocking the event loop. Started by the first `ping` (a worker takes a few hundred
 * milliseconds to boot on a small machine, so it is warmed before it is needed) and
 * unreferenced while idle so it never keeps the process alive.
 *
 * A folder copy is split into jobs spread over all workers: "start" a folder (create it, read
 * the source's names) and "copy" a batch of its files. On ext4 most of a copy's time is the
 * kernel creating inodes, which two threads do side by side in nearly half the time of one
 * (measured: two `cp -r` of half a tree each vs one of the whole tree). Queued file names are
 * capped, so a huge tree is never held in memory at once.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { backendFailed, cancelled } from '../../errors.js';
import type { JobContext } from '../../documents/job.js';
import { pausePoint } from '../../testing/pause-points.js';
import type { TreeRows } from './tree.js';
import type { TreeReply, TreeRequest } from './tree-worker.js';

/** Workers in the pool: one per CPU, at most two (measured on two CPUs: two copy a tree in ~0.6× the time of one). */
const SIZE = Math.max(1, Math.min(2, availableParallelism()));
/** Jobs handed to each worker at once (one running, one queued so it never waits for us). */
const IN_FLIGHT_PER_WORKER = 2;
/** Files per copy job: big enough to make a message's cost negligible, small enough to share. */
const FILES_PER_JOB = 64;
/** A folder with at most this many files has them copied by the job that creates it. */
const FILES_AT_START = 16;
/** Folders are started only while fewer file names than this wait to be copied. */
const MAX_QUEUED_FILES = 4096;
/** Rows per batch of a folder read. */
const ROWS_PER_BATCH = 1024;
/** Batches of a read asked for while one is handed out (once the read proves longer than one). */
const READ_AHEAD = 2;

/**
 * An errno failure reported by a worker: `code`; for reads `at`, the failing folder relative
 * to the one read; for copies `targetTaken`, true when the target already existed (someone
 * else's, to be left alone).
 */
export type TreeError = Error & { code: string; at?: string; targetTaken?: boolean };

/** A request that is answered, without its id (the worker object numbers it). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type JobInput = WithoutId<Extract<TreeRequest, { id: number }>>;

const stopped = (cause?: unknown) =>
  backendFailed('the local file system worker stopped unexpectedly', { providerMessage: 'tree worker exited', cause });

class TreeWorker {
  readonly pending = new Map<number, { resolve(r: TreeReply): void; reject(e: unknown): void }>();
  private readonly worker: Worker;
  private exited = false;

  constructor(private readonly onGone: (w: TreeWorker) => void) {
    this.worker = new Worker(new URL('./tree-worker.js', import.meta.url));
    this.worker.on('message', (reply: TreeReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker.unref();
      if (reply.code === undefined) p.resolve(reply);
      else p.reject(Object.assign(new Error(`local file system: ${reply.code}`), { code: reply.code, at: reply.at }));
    });
    const fail = (cause: unknown) => {
      this.exited = true;
      this.onGone(this);
      for (const p of this.pending.values()) p.reject(stopped(cause));
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`tree worker exited with code ${code}`)));
    // After the listeners: adding a 'message' listener references the worker again.
    this.worker.unref();
  }

  /** Sends a job and resolves with the worker's reply; rejects with a TreeError. */
  run(job: JobInput): Promise<TreeReply> {
    const id = nextId++;
    // A reader keeps using its worker: if that one has exited, nobody would ever answer.
    if (this.exited) return Promise.reject(stopped());
    return new Promise<TreeReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ ...job, id });
    });
  }

  /** Sends a message that has no answer. */
  tell(request: Extract<TreeRequest, { op: 'end' }>): void {
    this.worker.postMessage(request);
  }
}

const workers: TreeWorker[] = [];
let nextId = 1;

function gone(w: TreeWorker): void {
  const i = workers.indexOf(w);
  if (i >= 0) workers.splice(i, 1);
}

/** Starts the pool's workers if they are not running yet. */
export function warmTreePool(): void {
  while (workers.length < SIZE) workers.push(new TreeWorker(gone));
}

function leastBusy(): TreeWorker {
  warmTreePool();
  return workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
}

/**
 * Reads the folder `root` (absolute, already confined by the caller) — with `recursive`, its
 * whole tree — and yields its visible entries in batches. Rejects with a TreeError whose `at`
 * names the failing folder relative to `root`. Leaving the loop early releases the reader.
 */
export async function* readTreeOffThread(root: string, recursive: boolean): AsyncGenerator<TreeRows> {
  const worker = leastBusy();
  const reader = nextId++;
  let done = false;
  // Batches asked for and not yet handed out, oldest first. A folder that fits in one batch
  // (most listings) costs one request; a longer read keeps READ_AHEAD requests ahead, so the
  // worker reads while we yield. A request after the last batch is answered empty and done.
  const ahead = [worker.run({ op: 'read', reader, root, recursive, limit: ROWS_PER_BATCH })];
  try {
    while (!done) {
      const reply = await ahead.shift()!;
      done = reply.done === true;
      while (!done && ahead.length < READ_AHEAD) ahead.push(worker.run({ op: 'more', reader, limit: ROWS_PER_BATCH }));
      if (reply.rows!.count > 0) yield reply.rows!;
    }
  } finally {
    for (const p of ahead) p.catch(() => undefined); // nobody waits for the batches read ahead any more
    if (!done) worker.tell({ op: 'end', reader });
  }
}

/**
 * Copies one regular file `source` to `target` (absolute host paths, already confined by the
 * caller; `target` must not exist) on a worker, with the same no-follow copy as a folder's files.
 */
export async function copyFileOffThread(source: string, target: string, tag = '', job?: JobContext): Promise<void> {
  const reply = await leastBusy().run({ op: 'copyFile', source, target, tag });
  job?.progress({ items: 1, bytes: reply.bytes ?? 0 });
}

/**
 * Copies the folder `from` to `to` (absolute host paths, already confined by the caller; `to`
 * must not exist, its parent must — unless `resume`: then `to` may be the partial copy of a
 * crashed run of the job tagged `tag`, which is completed) across the pool. On failure it waits until no job is
 * running any more, then rejects with a TreeError carrying the errno `code` of the (first)
 * failure and `targetTaken`.
 *
 * With a `job` (issue 16): each batch's files and bytes are reported as progress, and the file
 * and byte totals once every folder has been read (while the copy runs on); the job's signal is checked before each batch is
 * handed out (the safe point: batches in flight finish, and every file they place is whole),
 * and an aborted job rejects with the `cancelled` error once nothing runs any more.
 */
export function copyTreeOffThread(from: string, to: string, options: { resume?: boolean; tag?: string; job?: JobContext } = {}): Promise<void> {
  const resume = options.resume === true;
  const tag = options.tag ?? '';
  const job = options.job;
  /** Files found so far (copied with their folder, or queued), their bytes, and folder reads running. */
  let found = 0;
  let foundBytes = 0;
  let reading = 0;
  /** A pause point of the tests holds the next batch back. */
  let holding = false;
  warmTreePool();
  const folders = [{ from, to }];
  const batches: Array<{ from: string; to: string; names: string[] }> = [];
  let queuedFiles = 0;
  let running = 0;
  let failure: unknown;
  let targetTaken = false;
  return new Promise<void>((resolve, reject) => {
    const settle = (job: Promise<void>) => {
      running++;
      job
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(() => {
          running--;
          pump();
        });
    };
    const copied = (reply: TreeReply) => {
      if (job && reply.copied) job.progress({ items: reply.copied, bytes: reply.bytes ?? 0 });
    };
    const startFolder = (folder: { from: string; to: string }) => {
      reading++;
      return leastBusy()
        .run({ op: 'startCopy', ...folder, copyUpTo: FILES_AT_START, resume, tag, measure: job !== undefined })
        .then((reply) => {
          const { folders: subfolders = [], files = [] } = reply;
          for (const name of subfolders) folders.push({ from: `${folder.from}/${name}`, to: `${folder.to}/${name}` });
          for (let i = 0; i < files.length; i += FILES_PER_JOB) {
            batches.push({ ...folder, names: files.slice(i, i + FILES_PER_JOB) });
          }
          queuedFiles += files.length;
          found += files.length + (reply.copied ?? 0);
          foundBytes += reply.listedBytes ?? 0;
          copied(reply);
        })
        .catch((e: unknown) => {
          if (folder.to === to && (e as Partial<TreeError>).code === 'EEXIST') targetTaken = true;
          throw e;
        })
        .finally(() => {
          // The last folder read: every file to copy is known.
          if (--reading === 0 && folders.length === 0 && failure === undefined) job?.progress({ itemsTotal: found, bytesTotal: foundBytes });
        });
    };
    const copyBatch = (batch: { from: string; to: string; names: string[] }) => {
      queuedFiles -= batch.names.length;
      return leastBusy()
        .run({ op: 'copyFiles', ...batch, tag })
        .then(copied);
    };
    const pump = () => {
      // The safe point: nothing more is handed out once the job is told to stop.
      if (job?.signal.aborted) failure ??= cancelled();
      while (failure === undefined && !holding && running < SIZE * IN_FLIGHT_PER_WORKER) {
        // Folders first (depth first), so every worker soon has files to copy — unless enough
        // file names wait already.
        if (folders.length > 0 && (queuedFiles < MAX_QUEUED_FILES || batches.length === 0)) settle(startFolder(folders.pop()!));
        else if (batches.length > 0) {
          const held = job && pausePoint('copy-batch', job.eventId, job.signal);
          if (held) {
            holding = true;
            void held.then(() => {
              holding = false;
              pump();
            });
            break;
          }
          settle(copyBatch(batches.pop()!));
        } else break;
      }
      if (running > 0 || holding) return;
      if (failure === undefined) resolve();
      else reject(Object.assign(failure as object, { targetTaken }));
    };
    pump();
  });
}
