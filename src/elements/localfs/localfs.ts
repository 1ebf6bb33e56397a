/**
 * The localfs element: one instance is one folder `<FERRY_LOCALFS_BASE>/<root>` on the Ferry
 * host, served with `node:fs/promises` and streams. Confinement against symbolic links (they
 * are invisible and never followed) is in `confine.ts`; folder reading and the tree copy in
 * `tree.ts`, run on worker threads by `tree-pool.ts`; error mapping in `fs-errors.ts`.
 *
 * Behaviour worth knowing:
 * - The root folder is created on first use (the `ping` made when the instance is created).
 * - `write` streams into a temp file `.ferry-upload-<tag><hex>.tmp` in the target folder, then
 *   renames it over the target, and so does every file of a copy: readers see the old file or
 *   the new one, never half of one, and a crash leaves at most a stray temp file (never listed
 *   or copied; a job's re-run removes its own, named by its event id; a sync request's, named by
 *   the node run, go at the next start through `removeTemps`). No fsync: a process
 *   crash is covered, a power loss is left to the file system's rename ordering.
 * - The root itself cannot be removed, moved or copied onto.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, rename, rm, rmdir, statfs, unlink, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { cancelled, invalid, isFerryError, notFound, conflict } from '../../errors.js';
import type { Element, Entry, StorageInfo, TransferOptions, WriteOptions } from '../element.js';
import { UploadFolders, foldersBetween, type UploadLease } from '../upload-folders.js';
import { tempTag } from '../../documents/job.js';
import { crashPoint } from '../../testing/crash-points.js';
import { checkCanonical, Confinement, lstatOrNull } from './confine.js';
import { errorCode, fsError } from './fs-errors.js';
import { removeOwnTempsSync, tempName, unpackRows, type TreeRows } from './tree.js';
import { readdir } from 'node:fs/promises';
import { copyFileOffThread, copyTreeOffThread, readTreeOffThread, warmTreePool, type TreeError } from './tree-pool.js';

// O_NOFOLLOW refuses a symlink at the last component; O_NONBLOCK keeps a FIFO from hanging open().
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const READ_FLAGS = constants.O_RDONLY | NOFOLLOW | (constants.O_NONBLOCK ?? 0);
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW;

function entry(p: string, s: Stats): Entry {
  return entryOf(p, s.isDirectory(), s.size, s.birthtimeMs, s.mtimeMs, s.ino);
}

/** Dates from milliseconds rounded as `Stats` does, so `stat` and `list` agree to the ms. */
function entryOf(p: string, directory: boolean, size: number, birthtimeMs: number, mtimeMs: number, ino: number): Entry {
  const modifiedDate = new Date(Math.round(mtimeMs));
  // One object literal of one shape: a walk makes one per file.
  return {
    path: p,
    directory,
    size: directory ? 0 : size,
    // birthtime is 0 where the file system does not record it.
    createdDate: birthtimeMs > 0 ? new Date(Math.round(birthtimeMs)) : modifiedDate,
    modifiedDate,
    // The inode tells a file replaced by another (a rename over it) even at equal size and mtime.
    version: String(ino),
  };
}

function child(folder: string, name: string): string {
  return folder === '/' ? `/${name}` : `${folder}/${name}`;
}

/** A localfs instance's backend. */
export class LocalFsElement implements Element {
  private readonly confine: Confinement;

  constructor(base: string, rootSegments: string[]) {
    this.confine = new Confinement(base, rootSegments);
  }

  async ping(): Promise<void> {
    await this.confine.refresh();
    warmTreePool();
  }

  async storage(): Promise<StorageInfo> {
    const root = await this.confine.root();
    try {
      const s = await statfs(root);
      return { total: s.blocks * s.bsize, used: (s.blocks - s.bfree) * s.bsize, shared: null };
    } catch (e) {
      throw fsError(e, '/', 'measure');
    }
  }

  async stat(p: string): Promise<Entry | null> {
    checkCanonical(p);
    const found = await this.confine.existing(await this.confine.root(), p);
    return found ? entry(p, found.stats) : null;
  }

  /** The existing folder at `p`, or notFound / invalid. */
  private async folder(p: string): Promise<string> {
    checkCanonical(p);
    const found = await this.confine.existing(await this.confine.root(), p);
    if (!found) throw notFound(`${p} does not exist`);
    if (!found.stats.isDirectory()) throw invalid(`${p} is a file, not a folder`);
    return found.abs;
  }

  list(p: string): AsyncIterable<Entry> {
    return this.entries(p, false);
  }

  walk(p: string): AsyncIterable<Entry> {
    return this.entries(p, true);
  }

  /** The visible entries of the folder `p` (`recursive`: of its whole tree), read off-thread. */
  private async *entries(p: string, recursive: boolean): AsyncIterable<Entry> {
    for await (const batch of this.batches(p, recursive)) yield* batch;
  }

  /** As `entries`, a batch (as read off-thread) at a time. */
  async *batches(p: string, recursive: boolean): AsyncIterable<Entry[]> {
    const rows = readTreeOffThread(await this.folder(p), recursive);
    try {
      for (;;) {
        let batch: IteratorResult<TreeRows>;
        try {
          batch = await rows.next();
        } catch (e) {
          const at = (e as Partial<TreeError>).at;
          throw fsError(e, at ? child(p, at) : p, 'list');
        }
        if (batch.done) return;
        yield unpackRows(batch.value, (rel, directory, size, birthtimeMs, mtimeMs, ino) => entryOf(child(p, rel), directory, size, birthtimeMs, mtimeMs, ino));
      }
    } finally {
      await rows.return(undefined); // releases the reader when the consumer stopped early
    }
  }

  async read(p: string): Promise<Readable> {
    checkCanonical(p);
    const found = await this.confine.existing(await this.confine.root(), p);
    if (!found) throw notFound(`${p} does not exist`);
    if (found.stats.isDirectory()) throw invalid(`${p} is a folder; only files can be downloaded`);
    let handle: FileHandle;
    try {
      handle = await open(found.abs, READ_FLAGS);
    } catch (e) {
      throw fsError(e, p, 'read');
    }
    try {
      // Whatever was checked above, the opened object must still be a regular file.
      if (!(await handle.stat()).isFile()) throw notFound(`${p} does not exist`);
    } catch (e) {
      await handle.close();
      throw fsError(e, p, 'read');
    }
    return handle.createReadStream();
  }

  async write(p: string, body: Readable, options: WriteOptions = {}): Promise<Entry> {
    checkCanonical(p);
    if (p === '/') throw invalid('a file needs a name: "/" is the root folder');
    const root = await this.confine.root();
    const abs = this.confine.abs(root, p);
    const folder = abs.slice(0, abs.lastIndexOf('/'));
    // A write that fails leaves no trace: not even the folders created for the file — unless
    // another upload into them is still running or succeeded (upload-folders.ts).
    const chain = folder.length > root.length ? foldersBetween(folder, `${root}/`) : [];
    return UPLOAD_FOLDERS.run(chain, (dir) => rmdir(dir), (lease) => this.writeHeld(p, body, root, abs, folder, lease, options));
  }

  private async writeHeld(p: string, body: Readable, root: string, abs: string, folder: string, lease: UploadLease, options: WriteOptions): Promise<Entry> {
    const created = await this.confine.prepareParents(root, p);
    if (created) lease.created(foldersBetween(folder, created));
    const existing = await lstatOrNull(abs, p);
    if (existing?.isDirectory()) throw invalid(`${p} is a folder; a file cannot replace it`);

    const tag = tempTag(options.job);
    if (options.resume) await removeOwnTemps(folder, tag);
    const temp = `${folder}/${tag ? tempName(tag) : `.ferry-upload-${randomBytes(8).toString('hex')}.tmp`}`;
    let handle: FileHandle;
    try {
      handle = await open(temp, CREATE_FLAGS, 0o666);
    } catch (e) {
      throw fsError(e, p, 'write');
    }
    // The stream closes the handle when it finishes or fails.
    const out = handle.createWriteStream();
    let diskError: unknown;
    out.once('error', (e) => (diskError = e));
    let piped = false;
    try {
      // A job's signal stops the write between two chunks (issue 16); the temp file goes below.
      await (options.job ? pipeline(body, out, { signal: options.job.signal }) : pipeline(body, out));
      piped = true;
      const stats = await lstat(temp);
      crashPoint('temp-filled');
      await rename(temp, abs);
      return entry(p, stats);
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      if (options.job?.signal.aborted) throw cancelled();
      // A failure of the client's body (aborted upload, size limit) is not a disk failure:
      // it goes up unchanged.
      if (!piped && diskError === undefined) throw e;
      throw fsError(diskError ?? e, p, 'write');
    }
  }

  async mkdir(p: string): Promise<Entry> {
    checkCanonical(p);
    const root = await this.confine.root();
    if (p !== '/') {
      await this.confine.prepareParents(root, p);
      const abs = this.confine.abs(root, p);
      const existing = await lstatOrNull(abs, p);
      if (existing?.isSymbolicLink()) throw invalid(`${p} is a symbolic link; Ferry does not follow symbolic links`);
      if (existing && !existing.isDirectory()) throw conflict(`${p} already exists as a file`);
      if (!existing) {
        try {
          await mkdir(abs);
        } catch (e) {
          if (errorCode(e) !== 'EEXIST') throw fsError(e, p, 'create');
        }
      }
    }
    const found = await this.confine.existing(root, p);
    if (!found?.stats.isDirectory()) throw conflict(`${p} already exists and is not a folder`);
    return entry(p, found.stats);
  }

  async remove(p: string): Promise<void> {
    checkCanonical(p);
    if (p === '/') throw invalid('the root folder of an instance cannot be deleted');
    const found = await this.confine.existing(await this.confine.root(), p);
    if (!found) throw notFound(`${p} does not exist`);
    try {
      // rm does not follow symlinks inside the tree: it removes the links themselves.
      await rm(found.abs, { recursive: true });
    } catch (e) {
      throw fsError(e, p, 'delete');
    }
  }

  /**
   * Common checks of move and copy; returns the source and the absolute destination, and whether
   * something is there already (only with `resume`: the job's own partial work).
   */
  private async prepareTransfer(from: string, to: string, action: string, resume = false) {
    checkCanonical(from);
    checkCanonical(to);
    if (from === '/') throw invalid(`the root folder of an instance cannot be ${action}`);
    if (to === '/') throw conflict('/ already exists');
    const root = await this.confine.root();
    const source = await this.confine.existing(root, from);
    if (!source) throw notFound(`${from} does not exist`);
    if (to === from) throw conflict(`${to} already exists`);
    if (to.startsWith(from + '/')) throw invalid(`a folder cannot be ${action} into itself (${from} → ${to})`);
    const target = this.confine.abs(root, to);
    const present = await lstatOrNull(target, to);
    if (present && !(resume && present.isDirectory() === source.stats.isDirectory() && !present.isSymbolicLink())) {
      throw conflict(`${to} already exists`);
    }
    await this.confine.prepareParents(root, to);
    return { source, target, present: present !== null };
  }

  async move(from: string, to: string, options: TransferOptions = {}): Promise<void> {
    const { source, target, present } = await this.prepareTransfer(from, to, 'moved', options.resume);
    if (present) {
      // A re-run of a move across a mount point that crashed half-way: finish the copy, then
      // drop the original. (A rename is atomic: it never leaves both.)
      await this.copyAt(source.abs, source.stats, target, from, options, true);
      await rm(source.abs, { recursive: true }).catch((e2: unknown) => {
        throw fsError(e2, from, 'move');
      });
      return;
    }
    try {
      await rename(source.abs, target);
    } catch (e) {
      if (errorCode(e) !== 'EXDEV') throw fsError(e, from, 'move');
      // A mount point inside the root: copy across, then drop the original.
      await this.copyAt(source.abs, source.stats, target, from, options, false);
      await rm(source.abs, { recursive: true }).catch((e2: unknown) => {
        throw fsError(e2, from, 'move');
      });
    }
  }

  async copy(from: string, to: string, options: TransferOptions = {}): Promise<void> {
    const { source, target, present } = await this.prepareTransfer(from, to, 'copied', options.resume);
    await this.copyAt(source.abs, source.stats, target, from, options, present);
  }

  /**
   * Copies `source` to `target`. `present`: `target` is the job's own partial copy (a re-run):
   * a file there is complete (files appear only by rename), a folder is completed.
   */
  private async copyAt(source: string, stats: Stats, target: string, from: string, options: TransferOptions, present: boolean): Promise<void> {
    const tag = tempTag(options.job);
    if (options.resume) await removeOwnTemps(target.slice(0, target.lastIndexOf('/')), tag);
    try {
      if (stats.isDirectory()) await copyTreeOffThread(source, target, { resume: present, tag, job: options.job });
      else if (!present) await copyFileOffThread(source, target, tag, options.job);
    } catch (e) {
      // Cancelled (issue 16): the files it placed are whole, and stay; nothing half-made is left.
      if (isFerryError(e, 'cancelled')) throw e;
      // Leave nothing half-copied behind — but a target that already existed (another writer
      // got there first) is theirs, not ours to delete. A folder copy has stopped writing into
      // the target when it rejects, and tells whether the target was taken (an EEXIST deeper
      // in the tree is a clash inside our own copy).
      const theirs = stats.isDirectory() ? (e as Partial<TreeError>).targetTaken === true : errorCode(e) === 'EEXIST';
      // A re-run keeps what it (and its crashed run) copied: the next re-run completes it.
      if (!theirs && !present) await rm(target, { recursive: true, force: true }).catch(() => undefined);
      throw fsError(e, from, 'copy');
    }
  }

  async removeTemps(p: string, tag: string, tree: boolean): Promise<void> {
    checkCanonical(p);
    if (tag === '') return;
    const found = await this.confine.existing(await this.confine.root(), p);
    if (!found?.stats.isDirectory()) return;
    // Only the folders a crashed write named, and (a folder copy) what it made below: links and
    // anything that is not a folder are not entered.
    const folders = [found.abs];
    for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
      let dirents;
      try {
        dirents = await readdir(folder, { withFileTypes: true });
      } catch {
        continue; // removed meanwhile
      }
      const names: string[] = [];
      for (const d of dirents) {
        if (d.isDirectory()) {
          if (tree) folders.push(`${folder}/${d.name}`);
        } else names.push(d.name);
      }
      removeOwnTempsSync(folder, names, tag);
    }
  }

  /** The file system's attributes of the object (what `stat` shows), for `?raw=true`. */
  async raw(p: string): Promise<Record<string, unknown> | null> {
    checkCanonical(p);
    const found = await this.confine.existing(await this.confine.root(), p);
    if (!found) return null;
    const s = found.stats;
    return {
      type: s.isDirectory() ? 'directory' : 'file',
      permissions: (s.mode & 0o7777).toString(8),
      mode: s.mode,
      size: s.size,
      nlink: s.nlink,
      atime: s.atime.toISOString(),
      mtime: s.mtime.toISOString(),
      ctime: s.ctime.toISOString(),
      birthtime: s.birthtimeMs > 0 ? s.birthtime.toISOString() : null,
    };
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }
}

/** Folders created for uploads in flight, across every localfs instance of this process. */
const UPLOAD_FOLDERS = new UploadFolders();
/** Removes the temp files the job tagged `tag` left directly in the folder `folder`. */
async function removeOwnTemps(folder: string, tag: string): Promise<void> {
  if (tag === '') return;
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return; // no folder yet: nothing left in it
  }
  removeOwnTempsSync(folder, names, tag);
}
