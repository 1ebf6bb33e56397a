/**
 * Folder-tree primitives of the localfs element: reading a folder's visible entries and
 * copying a tree. Both skip what Ferry does not show (symbolic links, sockets, FIFOs, devices,
 * in-progress upload temp files) — so a copy can never follow a link out of the root.
 *
 * The copy runs many file copies at once (libuv's thread pool does the blocking calls, and
 * `copyFile` uses copy_file_range / reflinks where the kernel offers them), which keeps it
 * within reach of `cp -r` on trees of many small files.
 */
import { constants, type Dirent, type Stats } from 'node:fs';
import { copyFile, lstat, mkdir, opendir, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Names of upload temp files (see LocalFsElement.write); never listed or copied. */
export const TEMP_NAME = /^\.ferry-upload-[0-9a-f]{16}\.tmp$/;

/** How many entries are `lstat`ed / file copies run concurrently. */
const BATCH = 64;

/** One visible child of a folder. */
export interface Child {
  name: string;
  stats: Stats;
}

/**
 * The regular files and folders directly inside `dir` (absolute), in batches as they are read,
 * so a huge folder is never held in memory at once.
 * (A copy reads each folder whole: it must hold the names until they are copied anyway.)
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

/** Runs at most `limit` tasks at once. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

async function kindOf(dirent: Dirent, abs: string): Promise<'file' | 'folder' | 'skip'> {
  if (dirent.isDirectory()) return 'folder';
  if (dirent.isFile()) return 'file';
  if (dirent.isSymbolicLink() || dirent.isFIFO() || dirent.isSocket() || dirent.isBlockDevice() || dirent.isCharacterDevice()) {
    return 'skip';
  }
  // Some file systems do not report the type in the directory entry.
  const s = await lstat(abs);
  return s.isDirectory() ? 'folder' : s.isFile() ? 'file' : 'skip';
}

/**
 * Copies the folder `from` to `to` (absolute; `to` must not exist, its parent must). Files
 * keep their permission bits; dates are new, as with `cp -r`.
 */
export async function copyTree(from: string, to: string): Promise<void> {
  const limiter = new Limiter(BATCH);
  const flags = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE;

  async function copyFolder(src: string, dst: string): Promise<void> {
    // Only the folder's own calls hold a slot, never the wait for its children: no deadlock,
    // and at most BATCH descriptors are open at once however wide the tree is.
    const dirents = await limiter.run(async () => {
      await mkdir(dst);
      return readdir(src, { withFileTypes: true });
    });
    const work: Promise<void>[] = [];
    for (const dirent of dirents) {
      if (TEMP_NAME.test(dirent.name)) continue;
      const s = path.join(src, dirent.name);
      const d = path.join(dst, dirent.name);
      work.push(
        kindOf(dirent, s).then((kind) => {
          if (kind === 'file') return limiter.run(() => copyFile(s, d, flags));
          if (kind === 'folder') return copyFolder(s, d);
        }),
      );
    }
    await settleAll(work);
  }

  await copyFolder(from, to);
}

/** Like Promise.all, but waits for every task before rejecting, so nothing runs on after. */
async function settleAll(work: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
