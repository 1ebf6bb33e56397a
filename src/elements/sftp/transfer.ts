/**
 * Putting bytes at a final name safely: every file is written under a hidden temp name in the
 * destination folder, then renamed over the final name. A failed or aborted upload therefore
 * never leaves a half file where the client expects one (the temp file is removed; if Ferry
 * itself dies, a `.ferry-upload-*` file may remain, which listings hide; an async job's temp
 * names carry its event id, `.ferry-upload-e<id>-*`, and its re-run removes them; a sync
 * request's carry the node run's tag, `.ferry-upload-s<hex>-*`, and go at the next start).
 *
 * The rename uses OpenSSH's `posix-rename@openssh.com` (atomic replace) when the server has it;
 * plain SFTP rename refuses to replace, so without the extension the old file is removed first.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SftpConnection } from './connection.js';
import { STATUS, sftpError, statusOf } from './errors.js';
import { SftpWriteStream } from './streams.js';
import { crashPoint } from '../../testing/crash-points.js';
import { cancelled, isFerryError } from '../../errors.js';
import { readFolder } from './tree.js';
import { isFolder } from './confine.js';
import { TEMP_PREFIX, isTempName } from './temp-names.js';

export { TEMP_PREFIX, isTempName };


function tempNameBeside(abs: string, tag: string): string {
  const folder = abs.slice(0, abs.lastIndexOf('/') + 1);
  return `${folder}${TEMP_PREFIX}${tag}${randomBytes(8).toString('hex')}.tmp`;
}

/**
 * Opens a fresh temp file beside `abs` (O_EXCL: never follows or reuses anything); `tag` names
 * the job writing it (documents/job.ts `tempTag`).
 */
export async function openTemp(conn: SftpConnection, abs: string, p: string, tag = ''): Promise<{ temp: string; handle: Buffer }> {
  const temp = tempNameBeside(abs, tag);
  try {
    const handle = await conn.call<Buffer>((sftp, done) => sftp.open(temp, 'wx', 0o644, done));
    return { temp, handle };
  } catch (e) {
    throw sftpError(e, p, 'write');
  }
}

/**
 * Streams `body` into the open temp file, then renames it to `abs`. Removes the temp on failure.
 * `signal` (a job's: issue 16) stops the transfer between two chunks: the temp file is removed
 * and the `cancelled` error goes up.
 */
export async function fillAndPlace(
  conn: SftpConnection,
  body: Readable,
  temp: { temp: string; handle: Buffer },
  abs: string,
  p: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    const sink = new SftpWriteStream(conn, temp.handle, p);
    await (signal ? pipeline(body, sink, { signal }) : pipeline(body, sink));
    crashPoint('temp-filled');
    if (signal?.aborted) throw cancelled();
    await renameOver(conn, temp.temp, abs, p);
  } catch (e) {
    await removeQuietly(conn, temp.temp);
    if (signal?.aborted) throw cancelled();
    throw e;
  }
  crashPoint('file-placed');
}

/**
 * Removes the temp files of the job tagged `tag` in server folder `folderAbs`, and returns the
 * names of the other entries there (what a resumed copy finds in place).
 */
export async function removeOwnTemps(conn: SftpConnection, folderAbs: string, p: string, tag: string): Promise<Set<string>> {
  const others = new Set<string>();
  const prefix = `${TEMP_PREFIX}${tag}`;
  try {
    for await (const batch of readFolder(conn, folderAbs, p)) {
      for (const entry of batch) {
        if (tag !== '' && entry.filename.startsWith(prefix) && isTempName(entry.filename)) await removeQuietly(conn, `${folderAbs}/${entry.filename}`);
        else others.add(entry.filename);
      }
    }
  } catch (e) {
    if (!isFerryError(e, 'not_found') && statusOf(e) !== STATUS.NO_SUCH_FILE) throw e; // no folder: nothing in it
  }
  return others;
}

/**
 * Removes the temp files tagged `tag` in server folder `folderAbs` and, with `tree`, in every
 * folder below it (links are not entered: READDIR shows them as links). No folder: nothing.
 */
export async function removeTaggedTemps(conn: SftpConnection, folderAbs: string, p: string, tag: string, tree: boolean): Promise<void> {
  if (tag === '') return;
  const prefix = `${TEMP_PREFIX}${tag}`;
  const folders = [folderAbs];
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    try {
      for await (const batch of readFolder(conn, folder, p)) {
        for (const entry of batch) {
          if (entry.filename.startsWith(prefix) && isTempName(entry.filename)) await removeQuietly(conn, `${folder}/${entry.filename}`);
          else if (tree && isFolder(entry.attrs)) folders.push(`${folder}/${entry.filename}`);
        }
      }
    } catch (e) {
      if (!isFerryError(e, 'not_found') && statusOf(e) !== STATUS.NO_SUCH_FILE) throw e; // gone: nothing in it
    }
  }
}

/** Renames `from` to `to`, replacing a file at `to`. */
export async function renameOver(conn: SftpConnection, from: string, to: string, p: string): Promise<void> {
  try {
    await conn.call((sftp, done) => sftp.ext_openssh_rename(from, to, done));
    return;
  } catch (e) {
    if (statusOf(e) !== STATUS.OP_UNSUPPORTED) throw sftpError(e, p, 'write');
  }
  // No atomic replace on this server: remove, then rename (a short window without the file).
  try {
    await conn.call((sftp, done) => sftp.unlink(to, done));
  } catch (e) {
    if (statusOf(e) !== STATUS.NO_SUCH_FILE) throw sftpError(e, p, 'write');
  }
  try {
    await conn.call((sftp, done) => sftp.rename(from, to, done));
  } catch (e) {
    throw sftpError(e, p, 'write');
  }
}

async function removeQuietly(conn: SftpConnection, abs: string): Promise<void> {
  if (!conn.alive) return; // the server removes nothing for us then; the name stays hidden
  await conn.call((sftp, done) => sftp.unlink(abs, done)).catch(() => undefined);
}
