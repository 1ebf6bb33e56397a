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
 * Later work plugs in here: cancellation and drain (`signal`), progress (`progress`), and long
 * jobs keeping their lease (`heartbeat`).
 */

/** A progress report of a long operation (counts so far; totals when known). */
export interface JobProgress {
  /** Files (objects) written so far. */
  files?: number;
  bytes?: number;
  totalFiles?: number;
  totalBytes?: number;
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
}

const NEVER = new AbortController().signal;

/** The context of a synchronous request: nobody to report to, nothing to resume. */
export const SYNC_JOB: JobContext = {
  rerun: false,
  signal: NEVER,
  progress: () => undefined,
  heartbeat: () => undefined,
};

/** The context of async event `eventId`'s run (`attempts`: earlier claims of its job). */
export function jobContext(
  eventId: number,
  attempts: number,
  store: { journalGet(eventId: number, key: string): Promise<string | null>; journalPut(eventId: number, key: string, value: string): Promise<void> },
  signal: AbortSignal = NEVER,
): JobContext {
  return {
    eventId,
    rerun: attempts > 0,
    journal: { get: (key) => store.journalGet(eventId, key), put: (key, value) => store.journalPut(eventId, key, value) },
    signal,
    progress: () => undefined,
    heartbeat: () => undefined,
  };
}

/**
 * The tag an element puts in its temporary names for this job: `e<eventId>-` for a job, empty
 * for a synchronous request. Temp names stay `.ferry-upload-<tag><16 hex>.tmp` on every element.
 */
export function tempTag(job: JobContext | undefined): string {
  return job?.eventId !== undefined ? `e${job.eventId}-` : '';
}
