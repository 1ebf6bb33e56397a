/**
 * Where a bulk job keeps what it produces (issue 17): one folder per job under FERRY_BULK_DIR,
 * `<dir>/<eventId>/`, holding `records` (an export's records, NDJSON) and `errors` (a batch's
 * error rows, NDJSON), both sealed with a key derived from the master key (sealed-file.ts), and
 * `state.json`: the job's counts and checkpoint, which its re-run after a crash resumes from,
 * and, once it finished, when its results expire.
 *
 * Retention: results are kept FERRY_RESULT_RETENTION after the job finishes; `sweepExpired`
 * deletes the sealed files then and leaves `state.json` marked expired, so a later read can say
 * that the result expired rather than that it never existed.
 *
 * A master key rotation re-seals every result still kept (`resealAll`, called by
 * identity/rotate.ts while the nodes are stopped).
 */
import fs from 'node:fs';
import path from 'node:path';
import { RESEAL_SUFFIX, resealFile } from './sealed-file.js';

/** A bulk job's counts and checkpoint, as kept in its `state.json`. */
export interface BulkState {
  recordsCount: number;
  recordsFailedCount: number;
  /** Export: matching entries of the walk already written (the walk skips them on a re-run). */
  matched: number;
  /** Batch: rows (0-based) before this one are done. */
  nextRow: number;
  /** Durable lengths of the sealed files at the checkpoint. */
  recordsLength: number;
  errorsLength: number;
  /** Set when the job finished (ms since epoch); results expire at finishedAt + retention. */
  finishedAt?: number;
  expired?: boolean;
}

export const EMPTY_STATE: BulkState = { recordsCount: 0, recordsFailedCount: 0, matched: 0, nextRow: 0, recordsLength: 0, errorsLength: 0 };

/** The label of the derived key sealing bulk results. */
export const RESULT_KEY_LABEL = 'ferry bulk results v1';

export class BulkResults {
  constructor(private readonly dir: string) {}

  folder(eventId: number): string {
    return path.join(this.dir, String(eventId));
  }

  recordsFile(eventId: number): string {
    return path.join(this.folder(eventId), 'records');
  }

  errorsFile(eventId: number): string {
    return path.join(this.folder(eventId), 'errors');
  }

  /** Whether a result file exists. */
  exists(file: string): boolean {
    return fs.existsSync(file);
  }

  /** The job's state, or null when it never wrote one. */
  read(eventId: number): BulkState | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.folder(eventId), 'state.json'), 'utf8')) as BulkState;
    } catch {
      return null;
    }
  }

  /** Replaces the job's state durably (write, fsync, rename). */
  write(eventId: number, state: BulkState): void {
    const folder = this.folder(eventId);
    fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
    const tmp = path.join(folder, 'state.json.tmp');
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(state));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(folder, 'state.json'));
  }

  /** Prepares the job's folder (a first run, or a re-run resuming from its state). */
  prepare(eventId: number): BulkState {
    fs.mkdirSync(this.folder(eventId), { recursive: true, mode: 0o700 });
    return this.read(eventId) ?? { ...EMPTY_STATE };
  }

  /** The event ids that have a results folder (none while the folder does not exist). */
  private jobIds(): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((name) => /^\d+$/.test(name)).map(Number);
  }

  /**
   * Deletes the sealed files of jobs that finished more than `retentionMs` ago, keeping their
   * state marked expired. Returns how many expired now.
   */
  sweepExpired(retentionMs: number, now = Date.now()): number {
    let count = 0;
    for (const id of this.jobIds()) {
      const state = this.read(id);
      if (!state || state.expired || state.finishedAt === undefined || state.finishedAt + retentionMs > now) continue;
      for (const file of [this.recordsFile(id), this.errorsFile(id)]) {
        fs.rmSync(file, { force: true });
        fs.rmSync(file + RESEAL_SUFFIX, { force: true }); // left by a rotation that stopped
      }
      this.write(id, { ...state, expired: true });
      count++;
    }
    return count;
  }

  /**
   * Re-seals every kept result under `next` (opened with whichever of `keys` fits); returns how
   * many files. Expired results are gone already (run `sweepExpired` first); a job still under
   * way keeps its checkpoint, since a re-seal keeps every frame's length.
   */
  async resealAll(keys: readonly Buffer[], next: Buffer): Promise<number> {
    let count = 0;
    for (const id of this.jobIds()) {
      const state = this.read(id);
      for (const [file, durable] of [
        [this.recordsFile(id), state?.recordsLength ?? 0],
        [this.errorsFile(id), state?.errorsLength ?? 0],
      ] as const) {
        if (!fs.existsSync(file)) {
          fs.rmSync(file + RESEAL_SUFFIX, { force: true });
          continue;
        }
        await resealFile(file, keys, next, durable);
        count++;
      }
    }
    return count;
  }
}
