/**
 * Reading a folder's tree through any element, for the callers that read whole trees: the
 * documents service (recursive copy, move, delete, search), bulk exports (issue 17) and change
 * polling (issue 18). Each element reads its tree its own way (`walk` where it has one: S3 lists
 * a flat namespace in pages; otherwise recursive `list` calls); `batches`, where an element has
 * it (localfs, whose tree is read on worker threads), hands over a batch at a time — an export
 * of 100,000 files then costs a few hundred awaits, not three for each file.
 *
 * A sub-folder removed while the tree is read simply has no descendants; the folder read
 * itself missing is the caller's `not_found`.
 */
import type { Element, Entry } from './element.js';
import { isFerryError } from '../errors.js';

/** Entries per batch where the element hands them over one at a time. */
const BATCH = 1000;

/** Every descendant of the folder `path` (folders included), in the element's order. */
export function descendants(element: Element, path: string): AsyncIterable<Entry> {
  return element.walk ? element.walk(path) : walkByList(element, path);
}

/**
 * The folder `path`'s entries (`recursive`: its every descendant), in the element's order, in
 * batches of at most about a thousand.
 */
export async function* entryBatches(element: Element, path: string, recursive: boolean): AsyncIterable<Entry[]> {
  if (element.batches) {
    yield* element.batches(path, recursive);
    return;
  }
  let batch: Entry[] = [];
  for await (const entry of recursive ? descendants(element, path) : element.list(path)) {
    batch.push(entry);
    if (batch.length < BATCH) continue;
    yield batch;
    batch = [];
  }
  if (batch.length > 0) yield batch;
}

/** A recursive listing from `list` calls, for elements without `walk`. */
async function* walkByList(element: Element, path: string): AsyncIterable<Entry> {
  const folders = [path];
  while (folders.length > 0) {
    const folder = folders.pop()!;
    try {
      for await (const entry of element.list(folder)) {
        yield entry;
        if (entry.directory) folders.push(entry.path);
      }
    } catch (e) {
      if (folder !== path && isFerryError(e, 'not_found')) continue;
      throw e;
    }
  }
}
