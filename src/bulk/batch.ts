/**
 * The batch job (`POST /bulk/files`, issue 17): applies each manifest row through the same
 * documents service as the hub routes (same confinement, same errors), `concurrency` rows at a
 * time, and keeps the rows that failed as sealed error rows `{row, operation, path, statusCode,
 * message}` (results.ts). A row with an unknown operation or no path fails alone; with
 * `continueOnError: false` the first failure stops the batch.
 *
 * Durability (applies no row twice): as each row ends, its outcome is put in the event's
 * journal under `row:<n>` before the row counts as done; every few hundred rows the error file
 * is fsynced and the state records the next row. A re-run after a crash resumes at that row,
 * and a row whose outcome the journal already holds is not applied again: its journaled
 * outcome is counted instead. A row cut off by the crash itself is resumed by the documents
 * service's own journal (documents/job.ts), like any async operation.
 *
 * Cancellation: the job's signal is checked between groups of rows; rows done stay done.
 */
import type { DocumentsService } from '../documents/service.js';
import { throwIfStopped, type JobContext } from '../documents/job.js';
import { normalisePath } from '../documents/paths.js';
import { invalid, isFerryError } from '../errors.js';
import { crashPoint } from '../testing/crash-points.js';
import { pausePoint } from '../testing/pause-points.js';
import { OPERATIONS, type BatchOptions, type ManifestRow, type Operation } from './manifest.js';
import type { BulkResults, BulkState } from './results.js';
import { SealedWriter } from './sealed-file.js';

/** Rows between two durable checkpoints (rows in between are covered by their journal entries). */
const CHECKPOINT_EVERY = 256;

/** A failed row, as GET /bulk/{id}/errors lists it. */
export interface ErrorRow {
  row: number;
  operation: string | null;
  path: string | null;
  statusCode: number;
  message: string;
}

export interface BatchRun {
  eventId: number;
  rows: AsyncIterable<ManifestRow>;
  options: BatchOptions;
  service: DocumentsService;
  results: BulkResults;
  key: Buffer;
  job: JobContext;
  maxPathLength: number;
  /** The HTTP status and message of an error (the HTTP layer's mapping). */
  describe(error: unknown): { statusCode: number; message: string };
}

/** Thrown when a row failed and `continueOnError` is false. */
export function stoppedOnError(row: number) {
  return invalid(`Row ${row} failed and metaData.continueOnError is false, so the batch stopped there; GET /bulk/{id}/errors lists it`);
}

/** Runs (or resumes) the batch; returns its final state. */
export async function runBatch(run: BatchRun): Promise<BulkState> {
  const { eventId, results, job } = run;
  const state = results.prepare(eventId);
  const errors = SealedWriter.open(results.errorsFile(eventId), run.key, state.errorsLength);
  let sinceCheckpoint = 0;
  let failedRow: number | null = null;
  const checkpoint = () => {
    state.errorsLength = errors.checkpoint();
    results.write(eventId, state);
    sinceCheckpoint = 0;
    crashPoint('bulk-checkpoint');
  };

  const runGroup = async (group: ManifestRow[]) => {
    const outcomes = await Promise.all(group.map((row) => runRow(run, row)));
    for (let i = 0; i < group.length; i++) {
      const outcome = outcomes[i];
      if (outcome === 'stopped') continue;
      if (outcome === null) state.recordsCount++;
      else {
        state.recordsFailedCount++;
        errors.write(JSON.stringify(outcome) + '\n');
        failedRow ??= group[i].row;
      }
      state.nextRow = Math.max(state.nextRow, group[i].row);
      job.progress({ items: 1 });
    }
    sinceCheckpoint += group.length;
    if (sinceCheckpoint >= CHECKPOINT_EVERY) checkpoint();
    const paused = pausePoint('bulk-batch', job.eventId, job.signal);
    if (paused) await paused;
    job.heartbeat();
  };

  try {
    if (state.nextRow > 0) job.progress({ items: state.nextRow });
    let group: ManifestRow[] = [];
    for await (const row of run.rows) {
      if (row.row <= state.nextRow) continue; // done by an earlier run of this job
      group.push(row);
      if (group.length >= run.options.concurrency) {
        await runGroup(group);
        group = [];
        if (job.signal.aborted || (failedRow !== null && !run.options.continueOnError)) break;
      }
    }
    if (group.length && !job.signal.aborted && !(failedRow !== null && !run.options.continueOnError)) await runGroup(group);
    checkpoint();
    throwIfStopped(job);
    if (failedRow !== null && !run.options.continueOnError) throw stoppedOnError(failedRow);
    return state;
  } finally {
    errors.close();
  }
}

/** Applies one row: null when done, its error row when it failed, 'stopped' when a cancel cut it. */
async function runRow(run: BatchRun, row: ManifestRow): Promise<ErrorRow | null | 'stopped'> {
  const key = `row:${row.row}`;
  const known = await run.job.journal?.get(key);
  if (known !== undefined && known !== null) return known === '' ? null : (JSON.parse(known) as ErrorRow);
  const operation = typeof row.operation === 'string' ? row.operation : null;
  const path = typeof row.path === 'string' && row.path !== '' ? row.path : null;
  let outcome: ErrorRow | null;
  try {
    await apply(run, row, operation, path);
    outcome = null;
  } catch (e) {
    if (isFerryError(e, 'cancelled') || run.job.signal.aborted) return 'stopped';
    const { statusCode, message } = run.describe(e);
    outcome = { row: row.row, operation, path, statusCode, message };
  }
  await run.job.journal?.put(key, outcome === null ? '' : JSON.stringify(outcome));
  crashPoint('bulk-row');
  return outcome;
}

async function apply(run: BatchRun, row: ManifestRow, operation: string | null, rawPath: string | null): Promise<void> {
  if (!operation || !(OPERATIONS as readonly string[]).includes(operation)) {
    throw invalid(`Unknown operation ${JSON.stringify(row.operation ?? null)}; use one of ${OPERATIONS.join(', ')}`);
  }
  if (rawPath === null) throw invalid('The row has no path; every row names the object it works on in "path"');
  const service = run.service;
  const path = normalisePath(rawPath, run.maxPathLength);
  const to = () => {
    if (typeof row.to !== 'string' || row.to === '') throw invalid(`A ${operation} row needs "to", the destination path`);
    return normalisePath(row.to, run.maxPathLength);
  };
  const overwrite = row.overwrite === true || row.overwrite === 'true';
  switch (operation as Operation) {
    case 'copy': {
      const source = await service.metadata(path);
      const dest = to();
      await service.copy(path, dest, dest, { expect: source.directory ? 'folder' : 'file', overwrite });
      return;
    }
    case 'move':
      await service.update(path, undefined, { path: to() }, overwrite);
      return;
    case 'delete': {
      const target = await service.metadata(path);
      await service.remove(path, target.directory ? 'folder' : 'file');
      return;
    }
    case 'createFolder':
      await service.createFolder(path, tagsOf(row.tags));
      return;
    case 'setTags':
      await service.update(path, undefined, { tags: tagsOf(row.tags) ?? [] });
      return;
  }
}

/** Tags of a row: a list, a JSON array in a CSV cell, or names separated by `;`. */
function tagsOf(value: unknown): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let list: unknown = value;
  if (typeof value === 'string') list = value.trim().startsWith('[') ? safeJson(value) : value.split(';').map((t) => t.trim()).filter(Boolean);
  if (!Array.isArray(list) || list.length > 100 || !list.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 255)) {
    throw invalid('tags must be a list of at most 100 non-empty names (a JSON array, or names separated by ;)');
  }
  return list as string[];
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
