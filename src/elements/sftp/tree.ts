/**
 * Folder traversal on the server: reading a folder batch by batch (never the whole listing of
 * a huge folder at once), walking a tree without following links, and deleting a tree.
 *
 * Entries come from READDIR, whose attributes OpenSSH takes with `lstat`: a link shows as a
 * link, so skipping links here is what keeps walks and copies inside the home.
 */
import type { Attributes, FileEntry } from 'ssh2';
import type { Entry } from '../element.js';
import type { SftpConnection } from './connection.js';
import { STATUS, sftpError, statusOf } from './errors.js';
import { childOf, isFile, isFolder } from './confine.js';
import { isTempName } from './temp-names.js';

/** The element entry for instance path `p` with server attributes `attrs`. */
export function toEntry(p: string, attrs: Attributes): Entry {
  const directory = isFolder(attrs);
  return {
    path: p,
    directory,
    size: directory ? 0 : attrs.size,
    // SFTP v3 has no creation time; only the modification time is known.
    modifiedDate: typeof attrs.mtime === 'number' ? new Date(attrs.mtime * 1000) : undefined,
  };
}

/**
 * True for what Ferry shows: regular files and folders, except its own temp files and names
 * that are not valid UTF-8 (they decode to U+FFFD and no request could address them).
 */
export function isVisible(name: string, attrs: Attributes): boolean {
  return (isFile(attrs) || isFolder(attrs)) && !isTempName(name) && !name.includes('\uFFFD');
}

/** The entries of server folder `abs`, a server batch at a time ("." and ".." left out). */
export async function* readFolder(conn: SftpConnection, abs: string, p: string): AsyncGenerator<FileEntry[]> {
  let handle: Buffer;
  try {
    handle = await conn.call<Buffer>((sftp, done) => sftp.opendir(abs, done));
  } catch (e) {
    throw sftpError(e, p, 'list');
  }
  try {
    for (;;) {
      let batch: FileEntry[] | false | undefined;
      try {
        batch = await conn.call<FileEntry[] | false>((sftp, done) => sftp.readdir(handle, done));
      } catch (e) {
        if (statusOf(e) === STATUS.EOF) return;
        throw sftpError(e, p, 'list');
      }
      if (!batch || batch.length === 0) return;
      yield batch.filter((entry) => entry.filename !== '.' && entry.filename !== '..');
    }
  } finally {
    if (conn.alive) await conn.call((sftp, done) => sftp.close(handle, done)).catch(() => undefined);
  }
}

/** How long after its last write a temp file is certainly abandoned (see localfs/tree.ts). */
const STALE_TEMP_MS = 3600_000;

/**
 * Removes the temp files among `batch` that nothing wrote to for STALE_TEMP_MS: what a crashed
 * sync request (which has no re-run) left. Listings call it; a failure changes nothing.
 */
function removeStaleTemps(conn: SftpConnection, abs: string, batch: FileEntry[]): void {
  const before = (Date.now() - STALE_TEMP_MS) / 1000;
  for (const child of batch) {
    if (isTempName(child.filename) && isFile(child.attrs) && typeof child.attrs.mtime === 'number' && child.attrs.mtime < before) {
      void conn.call((sftp, done) => sftp.unlink(`${abs}/${child.filename}`, done)).catch(() => undefined);
    }
  }
}

/** Visible children of one folder, as entries. */
export async function* listFolder(conn: SftpConnection, abs: string, p: string): AsyncGenerator<Entry> {
  for await (const batch of readFolder(conn, abs, p)) {
    removeStaleTemps(conn, abs, batch);
    for (const child of batch) {
      if (isVisible(child.filename, child.attrs)) yield toEntry(childOf(p, child.filename), child.attrs);
    }
  }
}

/** Every visible descendant of a folder, folders before their contents. */
export async function* walkFolder(conn: SftpConnection, abs: string, p: string): AsyncGenerator<Entry> {
  const pending = [{ abs, p }];
  while (pending.length) {
    const folder = pending.pop()!;
    for await (const batch of readFolder(conn, folder.abs, folder.p)) {
      removeStaleTemps(conn, folder.abs, batch);
      for (const child of batch) {
        if (!isVisible(child.filename, child.attrs)) continue;
        const childPath = childOf(folder.p, child.filename);
        yield toEntry(childPath, child.attrs);
        if (isFolder(child.attrs)) pending.push({ abs: `${folder.abs}/${child.filename}`, p: childPath });
      }
    }
  }
}

/** Runs `fn` over `items`, at most `limit` at once; fails with the first error after all settle. */
export async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failed) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.error;
}

/**
 * Deletes server folder `abs` and everything in it. Links and special files inside are removed
 * as themselves (a link is unlinked, never followed). Files go several at a time.
 */
export async function removeTree(conn: SftpConnection, abs: string, p: string): Promise<void> {
  const children: FileEntry[] = [];
  for await (const batch of readFolder(conn, abs, p)) children.push(...batch);
  const folders = children.filter((c) => isFolder(c.attrs));
  const others = children.filter((c) => !isFolder(c.attrs));
  await forEachLimited(others, 8, async (c) => {
    const childAbs = `${abs}/${c.filename}`;
    try {
      await conn.call((sftp, done) => sftp.unlink(childAbs, done));
    } catch (e) {
      if (statusOf(e) !== STATUS.NO_SUCH_FILE) throw sftpError(e, childOf(p, c.filename), 'delete');
    }
  });
  for (const c of folders) await removeTree(conn, `${abs}/${c.filename}`, childOf(p, c.filename));
  try {
    await conn.call((sftp, done) => sftp.rmdir(abs, done));
  } catch (e) {
    if (statusOf(e) !== STATUS.NO_SUCH_FILE) throw sftpError(e, p, 'delete');
  }
}
