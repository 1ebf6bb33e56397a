/**
 * The job context: what runs a documents-hub operation hands down to the documents service and
 * the element doing the work (DESIGN §2.1, "one job context"). A synchronous request gets
 * `SYNC_JOB` (no event id); an async job gets one from the runner, carrying its event id.
 *
 * What the event id buys (issue 25): every write of a job is recognisably its own. The service
 * records, in the store's per-event journal, what it is about to write before the first byte,
 * so a re-run after a crash resumes instead of colliding with its own half-finished work; the
 * elements put the event id in the names of their temporary files, so a re-run finds and
 * removes what its crashed predecessor left half-written.
 *
 * Progress and cancellation (issue 16) ride on the same context: the runner gives each running
 * job an AbortController (aborted by a cancel, or a drain) and a progress tracker
 * (async/progress.ts); elements report finished files and bytes through `progress`, and check
 * `signal` at their safe points — between two files, between two parts — through
 * `throwIfStopped`, cleaning up what they half made before the error goes up.
 */
import { cancelled } from '../errors.js';
import type { SyncTemps } from './sync-temps.js';


/**
 * A progress report of a long operation (issue 16). `items` and `bytes` are what was finished
 * since the last report (increments: elements working on several files at once report each
 * file as it lands); `itemsTotal` and `bytesTotal` are the totals, reported once known.
 */
export interface JobProgress {
  /** Files (objects) finished since the last report. */
  items?: number;
  /** Bytes moved since the last report. */
  bytes?: number;
  /** How many files the operation will finish in all, once known. */
  itemsTotal?: number;
  /** How many bytes the operation will move in all, once known. */
  bytesTotal?: number;
}

/** The job's entries in the store's per-event journal (store.ts JobJournalStore). */
export interface JobJournal {
  get(key: string): Promise<string | null>;
  /** Durable when it resolves. */
  put(key: string, value: string): Promise<void>;
}

export interface JobContext {
  /** The async event this operation runs for; absent for a synchronous request. */
  readonly eventId?: number;
  /**
   * The job's journal: what the documents service is about to write, what an element has in
   * flight (an S3 multipart upload id) — whatever a re-run must recognise as its own. Absent for
   * a synchronous request, which has no re-run.
   */
  readonly journal?: JobJournal;
  /**
   * True when this is not the job's first run (its lease expired before it finished: a crash or
   * a takeover). A hint only: the journal, not this flag, decides what is the job's own.
   */
  readonly rerun: boolean;
  /** Aborted when the job must stop (cancel, drain); elements check it between files or parts. */
  readonly signal: AbortSignal;
  /** Reports progress; cheap, may be called per file. */
  progress(update: JobProgress): void;
  /** Tells the runner the job is alive (its lease is renewed by the runner meanwhile anyway). */
  heartbeat(): void;
  /**
   * A synchronous request's registry of writes in flight (sync-temps.ts): the service registers
   * where a write will put temp files before the element makes them, and they carry the
   * registry's tag, so the next start removes what a crash left. Absent for an async job (its
   * re-run cleans up) and where nothing registers (tests, read-only routes).
   */
  readonly syncTemps?: SyncTemps;
}

const NEVER = new AbortController().signal;

/** The context of a synchronous request: nobody to report to, nothing to resume. */
export const SYNC_JOB: JobContext = {
  rerun: false,
  signal: NEVER,
  progress: () => undefined,
  heartbeat: () => undefined,
};

/** The context of a synchronous request whose writes register their temp files in `temps`. */
export function syncJob(temps: SyncTemps): JobContext {
  return { ...SYNC_JOB, syncTemps: temps };
}

/** The context of async event `eventId`'s run (`attempts`: earlier claims of its job). */
export function jobContext(
  eventId: number,
  attempts: number,
  store: { journalGet(eventId: number, key: string): Promise<string | null>; journalPut(eventId: number, key: string, value: string): Promise<void> },
  signal: AbortSignal = NEVER,
  progress: (update: JobProgress) => void = () => undefined,
): JobContext {
  return {
    eventId,
    rerun: attempts > 0,
    journal: { get: (key) => store.journalGet(eventId, key), put: (key, value) => store.journalPut(eventId, key, value) },
    signal,
    progress,
    heartbeat: () => undefined,
  };
}

/**
 * A safe point: throws the `cancelled` error when the job's signal is aborted (a cancel or a
 * drain), so the element stops here — after cleaning up what it half made, in its own catch.
 */
export function throwIfStopped(job: JobContext | undefined): void {
  if (job?.signal.aborted) throw cancelled();
}

/** Whether `job` has been told to stop (a cancel or a drain). */
export function stopped(job: JobContext | undefined): boolean {
  return job?.signal.aborted === true;
}

/**
 * The tag an element puts in its temporary names for this job: `e<eventId>-` for a job, the
 * node run's `s<8 hex>-` for a synchronous request that registers its writes (sync-temps.ts),
 * else empty. Temp names stay `.ferry-upload-<tag><16 hex>.tmp` on every element.
 */
export function tempTag(job: JobContext | undefined): string {
  if (job?.eventId !== undefined) return `e${job.eventId}-`;
  return job?.syncTemps?.tag ?? '';
}
