/**
 * Rescanning what an instance watches, in bounded slices: the element's own listing (`walk`
 * for a recursive watch, `list` otherwise) is read SLICE_ENTRIES at a time, and between two
 * slices the scan yields to the event loop and lets the poller renew its lease, so a tree of a
 * million files never holds the thread (or the lease) for long.
 *
 * Owns: reading the tree. May import: elements/element.ts, elements/walk.ts, errors.ts. The
 * element decides how to read (localfs on its tree worker threads with lstat, S3 by
 * ListObjectsV2 pages, SFTP by READDIR batches); symbolic links and Ferry's temp files are never
 * listed, as everywhere.
 *
 * A watched folder that does not exist (yet, or any more) scans as empty: its objects are
 * DELETED, and CREATED again when it comes back.
 */
import type { Element, Entry } from '../elements/element.js';
import { entryBatches } from '../elements/walk.js';
import { isFerryError } from '../errors.js';
import type { Watch } from './settings.js';

/** Entries read between two yields to the event loop. */
export const SLICE_ENTRIES = 500;

/** Every object under the watch (the watched folder itself excluded). `between` runs between slices. */
export async function scan(element: Element, watch: Watch, between: () => Promise<void>): Promise<Entry[]> {
  const out: Entry[] = [];
  let inSlice = 0;
  /** Adds one entry; true when a slice is full (then the caller yields). */
  const add = (entry: Entry): boolean => {
    if (entry.path === watch.path) return false;
    out.push(entry);
    if (++inSlice < SLICE_ENTRIES) return false;
    inSlice = 0;
    return true;
  };
  const pause = async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await between();
  };
  try {
    for await (const batch of entryBatches(element, watch.path, watch.recursive)) {
      for (const entry of batch) if (add(entry)) await pause();
    }
  } catch (e) {
    if (isFerryError(e, 'not_found')) return [];
    throw e;
  }
  return out;
}
