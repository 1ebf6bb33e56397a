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
import { randomBytes } from 'node:crypto';
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
  renameSync,
  unlinkSync,
  type Dir,
  type Dirent,
} from 'node:fs';
import { crashPoint } from '../../testing/crash-points.js';

/**
 * Names of Ferry's temp files (uploads and copied files, see the element contract): never
 * listed or copied. `e<eventId>-` names the async job that wrote one, `s<8 hex>-` the node run
 * whose synchronous request did (documents/sync-temps.ts).
 */
export const TEMP_NAME = /^\.ferry-upload-(e\d+-|s[0-9a-f]{8}-)?[0-9a-f]{16}\.tmp$/;

/** The prefix of the temp names of one job (`tag` from job.ts `tempTag`, never empty here). */
export function tempPrefix(tag: string): string {
  return `.ferry-upload-${tag}`;
}

/** Temp names of this thread: a random prefix and a counter (no random bytes per file). */
const TEMP_SEED = randomBytes(4).toString('hex');
let tempCounter = 0;

/** A fresh temp name for a job with tag `tag` ("" for a sync request). */
export function tempName(tag: string): string {
  tempCounter = (tempCounter + 1) % 0x100000000;
  return `${tempPrefix(tag)}${TEMP_SEED}${tempCounter.toString(16).padStart(8, '0')}.tmp`;
}

/**
 * How long after its last write a temp file is certainly abandoned: one being written changes
 * all the time, and a client that stops sending is cut after FERRY_IDLE_TIMEOUT.
 */
export const STALE_TEMP_MS = 3600_000;

/**
 * Removes the temp file `name` in `folder` when nothing wrote to it for STALE_TEMP_MS: what a
 * crashed sync request (which has no re-run) left. Listings call it for each temp they skip.
 */
export function removeIfStale(folder: string, name: string): void {
  try {
    const s = lstatSync(`${folder}/${name}`, { throwIfNoEntry: false });
    if (s?.isFile() && s.mtimeMs < Date.now() - STALE_TEMP_MS) unlinkSync(`${folder}/${name}`);
  } catch {
    // gone meanwhile, or not ours to remove
  }
}

/** Removes the temp files of the job tagged `tag` directly in `folder` (a re-run's leftovers). */
export function removeOwnTempsSync(folder: string, names: string[], tag: string): void {
  if (tag === '') return;
  const prefix = tempPrefix(tag);
  for (const name of names) {
    if (name.startsWith(prefix) && TEMP_NAME.test(name)) {
      try {
        unlinkSync(`${folder}/${name}`);
      } catch {
        // gone already
      }
    }
  }
}

/** Never replace; clone (reflink) where the file system can, else copy in the kernel. */
export const COPY_FLAGS = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE;

/**
 * Visible entries found by a TreeReader, packed to cross threads cheaply (a walk moves
 * hundreds of thousands; as one small array each, copying them between threads cost as much
 * as reading them): `paths` are paths relative to the folder read ("a/b.txt"), each followed
 * by a NUL (which no name holds); `numbers` holds ROW_FIELDS numbers per entry: 1 for a folder
 * else 0, its size, birth and modification times in milliseconds (birth is 0 where the file
 * system does not record it), and its inode number. `numbers` is transferred, not copied.
 */
export interface TreeRows {
  count: number;
  paths: string;
  numbers: Float64Array;
}

/** Numbers per entry in TreeRows.numbers. */
export const ROW_FIELDS = 5;

/** The entries of `rows`, each made by `make` from its fields. */
export function unpackRows<T>(
  rows: TreeRows,
  make: (rel: string, directory: boolean, size: number, birthtimeMs: number, mtimeMs: number, ino: number) => T,
): T[] {
  const { numbers, paths } = rows;
  const out: T[] = new Array(rows.count);
  let start = 0;
  for (let i = 0; i < rows.count; i++) {
    const end = paths.indexOf('\0', start);
    const at = i * ROW_FIELDS;
    out[i] = make(paths.slice(start, end), numbers[at] === 1, numbers[at + 1], numbers[at + 2], numbers[at + 3], numbers[at + 4]);
    start = end + 1;
  }
  return out;
}

/** An errno error raised while reading the folder at `at` (relative, "" for the start). */
export type ErrorAt = Error & { code?: string; at?: string };

/** Directory entries read per call by a TreeReader. */
const DIR_BUFFER = 256;

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
  next(limit: number): TreeRows {
    const numbers = new Float64Array(limit * ROW_FIELDS);
    let paths = '';
    let count = 0;
    while (count < limit) {
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
      if (TEMP_NAME.test(dirent.name)) {
        removeIfStale(this.dirRel === '' ? this.root : `${this.root}/${this.dirRel}`, dirent.name);
        continue;
      }
      if (dirent.isSymbolicLink()) continue;
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
      const at = count * ROW_FIELDS;
      numbers[at] = directory ? 1 : 0;
      numbers[at + 1] = directory ? 0 : s.size;
      numbers[at + 2] = s.birthtimeMs;
      numbers[at + 3] = s.mtimeMs;
      numbers[at + 4] = s.ino;
      paths += rel + '\0';
      count++;
      if (directory && this.recursive) this.pending.push(rel);
    }
    return { count, paths, numbers };
  }

  /** Opens the next folder to read; false when there is none left. */
  private open(): boolean {
    for (;;) {
      const rel = this.pending.pop();
      if (rel === undefined) return false;
      try {
        const abs = rel === '' ? this.root : `${this.root}/${rel}`;
        // Checked like a copy's folders (withFolders): a link swapped in is not listed through.
        // Entries fetched from the kernel per call: the default 32 costs a native call per 32 names.
        this.dir = withFolders([abs], ([opened]) => opendirSync(opened, { bufferSize: DIR_BUFFER }));
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
 * `resume` (a re-run of the job tagged `tag`): `to` may exist already as the job's own partial
 * copy; the job's temp files in it are removed and files already there (complete, since they
 * appear only by rename) are left out. `measure` (a job's copy, for its progress): `bytes` is the
 * sum of the sizes of `files`, one `lstat` each — a plain copy does not pay for it.
 */
export function startFolderCopySync(from: string, to: string, resume = false, tag = '', measure = false): { folders: string[]; files: string[]; bytes: number } {
  const folders: string[] = [];
  const files: string[] = [];
  let bytes = 0;
  checkPathLength(to);
  withFolders([from, parentOf(to)], ([source, parent]) => {
    const target = `${parent}/${to.slice(to.lastIndexOf('/') + 1)}`;
    let present: Set<string> | null = null;
    try {
      mkdirSync(target);
    } catch (e) {
      if (!resume || (e as ErrorAt).code !== 'EEXIST' || !lstatSync(target).isDirectory()) throw e;
      const names = readdirSync(target);
      removeOwnTempsSync(target, names, tag);
      present = new Set(names);
    }
    for (const dirent of readdirSync(source, { withFileTypes: true })) {
      const kind = kindOf(dirent, `${source}/${dirent.name}`);
      if (kind === 'file' && !present?.has(dirent.name)) {
        files.push(dirent.name);
        if (measure) bytes += lstatSync(`${source}/${dirent.name}`, { throwIfNoEntry: false })?.size ?? 0;
      } else if (kind === 'folder') folders.push(dirent.name);
    }
  });
  return { folders, files, bytes };
}

/**
 * Second step: copies the files `names` of folder `from` into the existing folder `to`. Files
 * keep their permission bits; dates are new, as with `cp -r`. Returns the bytes copied.
 */
export function copyFilesSync(from: string, to: string, names: string[], tag = ''): number {
  let bytes = 0;
  withFolders([from, to], ([source, target]) => {
    for (const name of names) {
      checkPathLength(`${to}/${name}`);
      bytes += copyRegularFileSync(`${source}/${name}`, `${target}/${name}`, tag);
    }
  });
  return bytes;
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
 * paths say (no link swapped in above them), like withFolders does. The bytes go to a temp name
 * beside the target (created with O_EXCL, which never follows a link), renamed over `target`
 * once complete: no torn file ever has the target's name (issue 25).
 */
export function copyRegularFileSync(source: string, target: string, tag = ''): number {
  const viaFd = (p: string) => p.startsWith('/proc/self/fd/');
  if (PROC_FD && !viaFd(target)) {
    const parent = parentOf(target);
    return withFolders([parent], ([opened]) => copyRegularFileSync(source, `${opened}${target.slice(parent.length)}`, tag));
  }
  // Copied under a temp name beside the target, then renamed: never a torn file at `target`.
  const temp = `${target.slice(0, target.lastIndexOf('/'))}/${tempName(tag)}`;
  let size = 0;
  try {
    if (!PROC_FD) {
      copyFileSync(source, temp, COPY_FLAGS);
    } else {
      const fd = openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        if (!viaFd(source) && readlinkSync(`/proc/self/fd/${fd}`) !== source) throw linkOnTheWay(source);
        const stats = fstatSync(fd);
        if (!stats.isFile()) throw Object.assign(new Error(`${source} is not a regular file`), { code: 'EINVAL' });
        size = stats.size;
        copyFileSync(`/proc/self/fd/${fd}`, temp, COPY_FLAGS);
      } finally {
        closeSync(fd);
      }
    }
    crashPoint('temp-filled');
    renameSync(temp, target);
  } catch (e) {
    try {
      unlinkSync(temp);
    } catch {
      // never created, or renamed
    }
    throw e;
  }
  crashPoint('file-placed');
  // The size as opened (progress only; 0 where /proc is missing and the file was not opened here).
  return size;
}
