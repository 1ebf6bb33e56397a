/**
 * Folder-tree primitives of the localfs element, run on the worker threads of tree-pool.ts
 * (never on the main thread: they block): reading folders with their entries' stats, and the
 * two steps of a folder copy. All of them skip what Ferry does not show (symbolic links,
 * sockets, FIFOs, devices, in-progress upload temp files) — so a copy can never follow a link
 * out of the root.
 *
 * Why blocking calls on workers: measured on trees of many small files, one promise per file
 * through libuv's pool ran 2–3× slower than `cp -r`, and an async walk with one `lstat`
 * promise per entry cost ~40 ms per 1,000 entries; the same calls made synchronously take a
 * few microseconds each (`copyFileSync` uses reflinks / copy_file_range like cp).
 */
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  opendirSync,
  readdirSync,
  readlinkSync,
  type Dir,
  type Dirent,
} from 'node:fs';

/** Names of upload temp files (see LocalFsElement.write); never listed or copied. */
export const TEMP_NAME = /^\.ferry-upload-[0-9a-f]{16}\.tmp$/;

/** Never replace; clone (reflink) where the file system can, else copy in the kernel. */
export const COPY_FLAGS = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE;

/**
 * One visible entry found by a TreeReader: its path relative to the folder read ("a/b.txt"),
 * whether it is a folder, its size, and birth and modification times in milliseconds (birth is
 * 0 where the file system does not record it), and its inode number. A tuple: thousands cross threads per walk.
 */
export type TreeRow = [rel: string, directory: boolean, size: number, birthtimeMs: number, mtimeMs: number, ino: number];

/** An errno error raised while reading the folder at `at` (relative, "" for the start). */
export type ErrorAt = Error & { code?: string; at?: string };

/**
 * Reads a folder (`recursive`: and everything below it) in batches, keeping only a stack of
 * folders still to read and one open directory between batches, so a huge tree is never held
 * in memory at once. A sub-folder removed while being read simply has no entries; any other
 * failure throws an ErrorAt.
 */
export class TreeReader {
  private readonly pending: string[] = [''];
  private dir: Dir | undefined;
  private dirRel = '';

  constructor(
    private readonly root: string,
    private readonly recursive: boolean,
  ) {}

  /** Up to `limit` more rows; fewer (possibly none) only when the reading is over. */
  next(limit: number): TreeRow[] {
    const rows: TreeRow[] = [];
    while (rows.length < limit) {
      if (!this.dir && !this.open()) break;
      let dirent: Dirent | null;
      try {
        dirent = this.dir!.readSync();
      } catch (e) {
        throw Object.assign(e as ErrorAt, { at: this.dirRel });
      }
      if (!dirent) {
        this.close();
        continue;
      }
      if (TEMP_NAME.test(dirent.name) || dirent.isSymbolicLink()) continue;
      const rel = this.dirRel === '' ? dirent.name : `${this.dirRel}/${dirent.name}`;
      let s;
      try {
        s = lstatSync(`${this.root}/${rel}`, { throwIfNoEntry: false });
      } catch {
        s = undefined; // unreadable meanwhile: as if gone
      }
      // Vanished meanwhile, or not something Ferry shows.
      if (!s || !(s.isFile() || s.isDirectory())) continue;
      const directory = s.isDirectory();
      rows.push([rel, directory, directory ? 0 : s.size, s.birthtimeMs, s.mtimeMs, s.ino]);
      if (directory && this.recursive) this.pending.push(rel);
    }
    return rows;
  }

  /** Opens the next folder to read; false when there is none left. */
  private open(): boolean {
    for (;;) {
      const rel = this.pending.pop();
      if (rel === undefined) return false;
      try {
        const abs = rel === '' ? this.root : `${this.root}/${rel}`;
        // Checked like a copy's folders (withFolders): a link swapped in is not listed through.
        this.dir = withFolders([abs], ([opened]) => opendirSync(opened));
        this.dirRel = rel;
        return true;
      } catch (e) {
        // A sub-folder removed while walking simply has no more descendants.
        if ((e as ErrorAt).code === 'ENOENT' && rel !== '') continue;
        throw Object.assign(e as ErrorAt, { at: rel });
      }
    }
  }

  /** Releases the open directory, if any. */
  close(): void {
    try {
      this.dir?.closeSync();
    } catch {
      // already closed
    }
    this.dir = undefined;
  }
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
 * First step of copying folder `from` to `to` (absolute): creates `to` (which must not exist;
 * its parent must) and returns the names of the sub-folders and files to copy into it.
 */
export function startFolderCopySync(from: string, to: string): { folders: string[]; files: string[] } {
  const folders: string[] = [];
  const files: string[] = [];
  checkPathLength(to);
  withFolders([from, parentOf(to)], ([source, parent]) => {
    mkdirSync(`${parent}/${to.slice(to.lastIndexOf('/') + 1)}`);
    for (const dirent of readdirSync(source, { withFileTypes: true })) {
      const kind = kindOf(dirent, `${source}/${dirent.name}`);
      if (kind === 'file') files.push(dirent.name);
      else if (kind === 'folder') folders.push(dirent.name);
    }
  });
  return { folders, files };
}

/**
 * Second step: copies the files `names` of folder `from` into the existing folder `to`. Files
 * keep their permission bits; dates are new, as with `cp -r`.
 */
export function copyFilesSync(from: string, to: string, names: string[]): void {
  withFolders([from, to], ([source, target]) => {
    for (const name of names) {
      checkPathLength(`${to}/${name}`);
      copyRegularFileSync(`${source}/${name}`, `${target}/${name}`);
    }
  });
}

/** Whether this system has /proc/self/fd (Linux): then copies read what an fd holds. */
const PROC_FD = existsSync('/proc/self/fd');

const FOLDER_FLAGS = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | constants.O_NOFOLLOW;

/** Linux's PATH_MAX, terminating NUL included. */
const PATH_MAX = 4096;

/**
 * Refuses to create what could not be reached by its path afterwards: through /proc/self/fd the
 * kernel would let a copy go deeper than PATH_MAX, where nothing (its own clean-up included)
 * could name it any more.
 */
function checkPathLength(abs: string): void {
  if (Buffer.byteLength(abs) >= PATH_MAX) {
    throw Object.assign(new Error(`${abs.slice(0, 64)}… is longer than the file system allows`), { code: 'ENAMETOOLONG' });
  }
}

function parentOf(abs: string): string {
  return abs.slice(0, abs.lastIndexOf('/')) || '/';
}

/** The error for something opened that is not what its path named (a link on the way). */
function linkOnTheWay(abs: string): ErrorAt {
  return Object.assign(new Error(`${abs} was reached through a symbolic link`), { code: 'ELOOP' });
}

/**
 * Runs `fn` with each folder of `paths` (absolute, canonical: no link in them) opened without
 * following links and checked to be the folder its path names — /proc/self/fd/N of an opened
 * folder reads back where it really is, so a symbolic link swapped in for it or for any folder
 * above it is refused (ELOOP). `fn` gets /proc/self/fd/N paths: everything it reads or creates
 * through them is inside the folders opened, whatever is renamed or swapped above them
 * meanwhile (the kernel resolves them from the open folder, like openat). Without /proc (not
 * Linux) the paths are passed as they are.
 */
function withFolders<T>(paths: string[], fn: (opened: string[]) => T): T {
  if (!PROC_FD) return fn(paths);
  const fds: number[] = [];
  try {
    for (const abs of paths) {
      const fd = openSync(abs, FOLDER_FLAGS);
      fds.push(fd);
      if (readlinkSync(`/proc/self/fd/${fd}`) !== abs) throw linkOnTheWay(abs);
    }
    return fn(fds.map((fd) => `/proc/self/fd/${fd}`));
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/**
 * Copies the regular file at `source` — the file itself, never what a symbolic link put there
 * since it was listed points to: it is opened with O_NOFOLLOW (a link fails with ELOOP), checked
 * to be a regular file, and copied from its descriptor (/proc/self/fd/N reopens that very file).
 * `source` and `target` are either /proc/self/fd paths below folders opened by withFolders, or
 * absolute canonical paths: then the file and the target's folder are checked to be where their
 * paths say (no link swapped in above them), like withFolders does. The target is created with
 * O_EXCL, which never follows a link either.
 */
export function copyRegularFileSync(source: string, target: string): void {
  if (!PROC_FD) {
    copyFileSync(source, target, COPY_FLAGS);
    return;
  }
  const viaFd = (p: string) => p.startsWith('/proc/self/fd/');
  if (!viaFd(target)) {
    const parent = parentOf(target);
    withFolders([parent], ([opened]) => copyRegularFileSync(source, `${opened}${target.slice(parent.length)}`));
    return;
  }
  const fd = openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    if (!viaFd(source) && readlinkSync(`/proc/self/fd/${fd}`) !== source) throw linkOnTheWay(source);
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error(`${source} is not a regular file`), { code: 'EINVAL' });
    copyFileSync(`/proc/self/fd/${fd}`, target, COPY_FLAGS);
  } finally {
    closeSync(fd);
  }
}
