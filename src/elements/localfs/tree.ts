/**
 * Folder-tree primitives of the localfs element: reading a folder's visible entries and
 * copying a tree. Both skip what Ferry does not show (symbolic links, sockets, FIFOs, devices,
 * in-progress upload temp files) — so a copy can never follow a link out of the root.
 *
 * The copy is a plain synchronous walk meant for a worker thread: measured on trees of many
 * small files, one promise per file through libuv's pool ran 2–3× slower than `cp -r`, while
 * the blocking walk matches it (`copyFileSync` uses reflinks / copy_file_range like cp).
 */
import { constants, copyFileSync, lstatSync, mkdirSync, readdirSync, type Dirent, type Stats } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import path from 'node:path';

/** Names of upload temp files (see LocalFsElement.write); never listed or copied. */
export const TEMP_NAME = /^\.ferry-upload-[0-9a-f]{16}\.tmp$/;

/** How many entries are read and `lstat`ed at once. */
const BATCH = 64;

/** Never replace; clone (reflink) where the file system can, else copy in the kernel. */
export const COPY_FLAGS = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE;

/** One visible child of a folder. */
export interface Child {
  name: string;
  stats: Stats;
}

/**
 * The regular files and folders directly inside `dir` (absolute), in batches as they are read,
 * so a huge folder is never held in memory at once.
 */
export async function* children(dir: string): AsyncGenerator<Child[]> {
  const handle = await opendir(dir, { bufferSize: BATCH });
  let names: string[] = [];
  const flush = async (): Promise<Child[]> => {
    const stats = await Promise.all(names.map((n) => lstat(path.join(dir, n)).catch(() => null)));
    const out: Child[] = [];
    names.forEach((name, i) => {
      const s = stats[i];
      // Vanished meanwhile, or not something Ferry shows.
      if (s && (s.isFile() || s.isDirectory())) out.push({ name, stats: s });
    });
    names = [];
    return out;
  };
  // The async iterator of Dir closes the handle when the loop ends, breaks or throws.
  for await (const dirent of handle) {
    if (TEMP_NAME.test(dirent.name) || dirent.isSymbolicLink()) continue;
    names.push(dirent.name);
    if (names.length >= BATCH) yield await flush();
  }
  if (names.length > 0) yield await flush();
}

/** What a directory entry is to Ferry; `lstat`s only when the file system did not say. */
function kindOf(dirent: Dirent, abs: string): 'file' | 'folder' | 'skip' {
  if (TEMP_NAME.test(dirent.name)) return 'skip';
  if (dirent.isDirectory()) return 'folder';
  if (dirent.isFile()) return 'file';
  if (dirent.isSymbolicLink() || dirent.isFIFO() || dirent.isSocket() || dirent.isBlockDevice() || dirent.isCharacterDevice()) {
    return 'skip';
  }
  const s = lstatSync(abs);
  return s.isDirectory() ? 'folder' : s.isFile() ? 'file' : 'skip';
}

/**
 * Copies the folder `from` to `to` (absolute; `to` must not exist, its parent must), with
 * blocking calls: it runs on a worker thread (copy-worker.ts), never on the main one. Files
 * keep their permission bits; dates are new, as with `cp -r`.
 */
export function copyTreeSync(from: string, to: string): void {
  mkdirSync(to);
  for (const dirent of readdirSync(from, { withFileTypes: true })) {
    const s = path.join(from, dirent.name);
    const d = path.join(to, dirent.name);
    const kind = kindOf(dirent, s);
    if (kind === 'file') copyFileSync(s, d, COPY_FLAGS);
    else if (kind === 'folder') copyTreeSync(s, d);
  }
}
