/**
 * Progress of a running async job (issue 16): what it has finished so far and, once known, in
 * all — files and bytes — as the events API and the final webhook show it.
 *
 * Cost: progress is written to the store at most every FLUSH_MS per running job, and not at all
 * during a job's first FLUSH_MS — a short job (every job of the accept benchmark) writes
 * nothing beyond its completion, which stores the final figures in the same statement. The
 * tracker's timer exists only while a running job has unwritten progress, so an idle node has
 * none.
 */
import type { JobProgress } from '../documents/job.js';
import type { ExecutionState } from '../store/async.js';

/** How often (at most) a running job's progress is written, in milliseconds. */
export const FLUSH_MS = 500;

/** Progress as stored with the event (JSON). Totals are null until known. */
export interface StoredProgress {
  itemsDone: number;
  itemsTotal: number | null;
  bytesDone: number;
  bytesTotal: number | null;
}

/** Progress as the API and the webhook show it. */
export interface PresentedProgress extends StoredProgress {
  /** 0–100, or null while no total is known. */
  percentageComplete: number | null;
}

/**
 * The progress object of an event in `execution` state with `stored` figures (null: nothing
 * reported). A completed job is at 100; a job that reported nothing (no natural measure) at 0
 * until then; otherwise the share of bytes, or of files when the bytes total is unknown.
 */
export function presentProgress(stored: StoredProgress | null, execution: ExecutionState): PresentedProgress {
  // Nothing reported: nothing known while it runs; once it completed, it did nothing measurable.
  const known = execution === 'completed' ? 0 : null;
  const p = stored ?? { itemsDone: 0, itemsTotal: known, bytesDone: 0, bytesTotal: known };
  let percentageComplete: number | null;
  if (execution === 'completed') percentageComplete = 100;
  else if (stored === null) percentageComplete = 0;
  else if (p.bytesTotal !== null && p.bytesTotal > 0) percentageComplete = share(p.bytesDone, p.bytesTotal);
  else if (p.itemsTotal !== null && p.itemsTotal > 0) percentageComplete = share(p.itemsDone, p.itemsTotal);
  else if (p.itemsTotal === 0 || p.bytesTotal === 0) percentageComplete = 0;
  else percentageComplete = null;
  return { percentageComplete, itemsDone: p.itemsDone, itemsTotal: p.itemsTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal };
}

function share(done: number, total: number): number {
  return Math.max(0, Math.min(100, Math.floor((done / total) * 100)));
}

/** Parses a stored progress column (JSON text or null). */
export function parseProgress(text: unknown): StoredProgress | null {
  if (typeof text !== 'string' || text === '') return null;
  try {
    return JSON.parse(text) as StoredProgress;
  } catch {
    return null;
  }
}

/**
 * One running job's progress: adds up the reports of its job context and writes them through
 * `write` at most every FLUSH_MS (never during its first FLUSH_MS), one write at a time.
 */
export class ProgressTracker {
  private readonly figures: StoredProgress = { itemsDone: 0, itemsTotal: null, bytesDone: 0, bytesTotal: null };
  private reported = false;
  private dirty = false;
  private writing = false;
  private ended = false;
  private timer: NodeJS.Timeout | null = null;
  private lastWrite: number;

  constructor(
    private readonly write: (figures: StoredProgress) => Promise<void>,
    now = Date.now(),
  ) {
    this.lastWrite = now;
  }

  /** Adds one report of the job (see JobProgress). Cheap: called per file, per chunk. */
  readonly report = (update: JobProgress): void => {
    if (this.ended) return;
    const f = this.figures;
    if (update.items) f.itemsDone += update.items;
    if (update.bytes) f.bytesDone += update.bytes;
    if (update.itemsTotal !== undefined) f.itemsTotal = update.itemsTotal;
    if (update.bytesTotal !== undefined) f.bytesTotal = update.bytesTotal;
    this.reported = true;
    this.dirty = true;
    this.schedule();
  };

  /**
   * The figures to store with the outcome; null when the job reported nothing (most short jobs:
   * nothing to write; presentProgress shows 0, or 100 once completed).
   */
  final(completed: boolean): StoredProgress | null {
    this.end();
    if (!this.reported) return null;
    const f = { ...this.figures };
    // Once the job has completed, everything it was going to do is known.
    if (completed) {
      f.itemsTotal = f.itemsDone;
      if (f.bytesTotal === null || f.bytesTotal < f.bytesDone) f.bytesTotal = f.bytesDone;
    }
    return f;
  }

  /** Stops writing (the job has ended). */
  end(): void {
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer || this.writing || this.ended) return;
    const wait = Math.max(0, this.lastWrite + FLUSH_MS - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
    this.timer.unref();
  }

  private flush(): void {
    this.timer = null;
    if (this.ended || !this.dirty) return;
    this.dirty = false;
    this.writing = true;
    this.lastWrite = Date.now();
    this.write({ ...this.figures })
      .catch(() => undefined) // progress is a hint: the outcome stores the final figures
      .finally(() => {
        this.writing = false;
        if (this.dirty) this.schedule();
      });
  }
}
