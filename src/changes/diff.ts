/**
 * Comparing a rescan with the snapshot of the previous poll: pure functions, no I/O.
 *
 * Owns: what counts as a change. May import: elements/element.ts (Entry), store/changes.ts
 * (SnapshotEntry types).
 *
 * - A file's fingerprint is its size, modification time (ms) and the backend's version token
 *   (localfs inode, S3 ETag; SFTP has none): any difference is an UPDATED.
 * - A folder's fingerprint is constant: a folder is CREATED or DELETED, never UPDATED (its
 *   modification time moves with every child added or removed, which the children's own events
 *   already say).
 * - A path that turns from file into folder (or back) is a DELETED of the old plus a CREATED
 *   of the new; a rename is a DELETED of the old path plus a CREATED of the new (paths are the
 *   identity: an object's hub id is its path).
 */
import type { Entry } from '../elements/element.js';
import type { SnapshotEntry } from '../store/changes.js';

export type ChangeType = 'CREATED' | 'UPDATED' | 'DELETED';

/** One change found by a poll, with what the rescan saw (absent for a deletion). */
export interface Change {
  eventType: ChangeType;
  path: string;
  directory: boolean;
  entry?: Entry;
}

/** The snapshot form of a scanned entry. */
export function snapshotOf(entry: Entry): SnapshotEntry {
  if (entry.directory) return { path: entry.path, directory: true, fingerprint: 'folder' };
  const mtime = entry.modifiedDate ? entry.modifiedDate.getTime() : '';
  return { path: entry.path, directory: false, fingerprint: `${entry.size}:${mtime}:${entry.version ?? ''}` };
}

/**
 * The changes from `previous` (the stored snapshot) to `scanned` (every entry of the rescan,
 * the watched folder itself excluded), in a stable order: deletions first (so a rename reads
 * DELETED then CREATED), then creations and updates, each group by path.
 */
export function diff(previous: Map<string, SnapshotEntry>, scanned: Iterable<Entry>): Change[] {
  const seen = new Set<string>();
  const gone: Change[] = [];
  const appeared: Change[] = [];
  for (const entry of scanned) {
    if (seen.has(entry.path)) continue;
    seen.add(entry.path);
    const now = snapshotOf(entry);
    const before = previous.get(entry.path);
    if (!before) {
      appeared.push({ eventType: 'CREATED', path: entry.path, directory: entry.directory, entry });
    } else if (before.directory !== now.directory) {
      gone.push({ eventType: 'DELETED', path: entry.path, directory: before.directory });
      appeared.push({ eventType: 'CREATED', path: entry.path, directory: entry.directory, entry });
    } else if (before.fingerprint !== now.fingerprint) {
      appeared.push({ eventType: 'UPDATED', path: entry.path, directory: entry.directory, entry });
    }
  }
  for (const [path, before] of previous) {
    if (!seen.has(path)) gone.push({ eventType: 'DELETED', path, directory: before.directory });
  }
  const byPath = (a: Change, b: Change) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return [...gone.sort(byPath), ...appeared.sort(byPath)];
}

/** What the snapshot must learn from `changes`: deletions, then the objects as they now are. */
export function snapshotWrites(changes: Change[]): { deletes: string[]; upserts: SnapshotEntry[] } {
  const deletes: string[] = [];
  const upserts: SnapshotEntry[] = [];
  for (const c of changes) {
    if (c.eventType === 'DELETED') deletes.push(c.path);
    else if (c.entry) upserts.push(snapshotOf(c.entry));
  }
  return { deletes, upserts };
}
