/**
 * The export job (`POST /bulk/query`, issue 17): walks the instance's whole tree through the
 * documents service — streamed by each element (S3 list pages, SFTP readdir, local
 * directories), never the whole listing in memory — keeps the objects the query matches, and
 * appends them as NDJSON records to the job's sealed records file, a few thousand at a time.
 *
 * Durability: at a checkpoint (see CHECKPOINT_EVERY) the file is fsynced and the job's state
 * records how many matching objects are in it and the file's length (results.ts). A re-run
 * after a crash cuts the file back to that length and skips that many matching objects of the
 * walk, so the result holds every matching record exactly once (the walk's order is the
 * element's: sorted keys on S3, directory order on SFTP and localfs, stable while the tree does
 * not change).
 *
 * Cancellation: the job's signal is checked after each batch of the walk; a cancelled export
 * keeps what it wrote (readable as the partial result) and stops with the `cancelled` error.
 */
import type { DocumentsService } from '../documents/service.js';
import type { Entry } from '../elements/element.js';
import { throwIfStopped, type JobContext } from '../documents/job.js';
import { baseName } from '../documents/paths.js';
import { crashPoint } from '../testing/crash-points.js';
import { pausePoint } from '../testing/pause-points.js';
import type { ExportQuery } from './query.js';
import { SealedWriter } from './sealed-file.js';
import type { BulkResults, BulkState } from './results.js';
import { encodeRecord, recordLine, recordRoom } from './records.js';

/** Objects presented (tags looked up) and written per batch. */
const BATCH = 1000;
/**
 * A durable checkpoint (two fsyncs) is taken once at least this many records and this much time
 * have passed since the last: a re-run after a crash re-walks at most a few seconds of work.
 */
const CHECKPOINT_EVERY = 5000;
const CHECKPOINT_MS = 2000;

export interface ExportRun {
  eventId: number;
  query: ExportQuery;
  service: DocumentsService;
  results: BulkResults;
  key: Buffer;
  job: JobContext;
}

/** Runs (or resumes) the export; returns its final state. Throws `cancelled` when stopped. */
export async function runExport(run: ExportRun): Promise<BulkState> {
  const { eventId, results, service, job } = run;
  const state = results.prepare(eventId);
  const writer = SealedWriter.open(results.recordsFile(eventId), run.key, state.recordsLength);
  const skip = state.matched;
  let matched = 0;
  let sinceCheckpoint = 0;
  let lastCheckpoint = Date.now();
  let batch: Entry[] = [];

  const checkpoint = () => {
    state.recordsLength = writer.checkpoint();
    state.matched = state.recordsCount;
    results.write(eventId, state);
    sinceCheckpoint = 0;
    lastCheckpoint = Date.now();
    crashPoint('bulk-checkpoint');
  };
  const flush = async () => {
    if (!batch.length) return;
    const objects = await service.presentMany(batch);
    for (const o of objects) if (!writer.append(recordRoom(o), encodeRecord, o)) writer.write(recordLine(o));
    state.recordsCount += objects.length;
    sinceCheckpoint += objects.length;
    job.progress({ items: objects.length });
    batch = [];
    crashPoint('bulk-batch');
    if (sinceCheckpoint >= CHECKPOINT_EVERY && Date.now() - lastCheckpoint >= CHECKPOINT_MS) checkpoint();
    const paused = pausePoint('bulk-batch', job.eventId, job.signal);
    if (paused) await paused;
    job.heartbeat();
  };

  try {
    if (skip > 0) job.progress({ items: skip });
    for await (const entries of service.walkBatches('/')) {
      for (const e of entries) {
        if (!run.query.everything && !run.query.matches({ ...e, name: baseName(e.path) })) continue;
        matched++;
        if (matched <= skip) continue; // written by an earlier run of this job
        batch.push(e);
        if (batch.length >= BATCH) await flush();
      }
      // Checked after every batch of the walk, matching or not: a query that matches little
      // still stops soon after a cancel.
      if (job.signal.aborted) {
        await flush();
        checkpoint();
        throwIfStopped(job);
      }
    }
    await flush();
    checkpoint();
    throwIfStopped(job);
    return state;
  } finally {
    writer.close();
  }
}
