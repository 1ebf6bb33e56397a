/**
 * The sftp element: the Element operations over an SFTP server, confined to a home directory.
 *
 * Shape of every operation: lease a connection from the pool, confine the path (confine.ts),
 * then send the primitive requests. The part before any side effect runs through
 * `pool.hold(..., idempotent)`, so an operation that meets a connection which broke since its
 * last use (server restarted, socket closed) transparently retries on a fresh one. Streams and
 * listings keep their lease until they end.
 *
 * SFTP has no server-side copy: copies stream each file through Ferry (bounded concurrency),
 * reading and writing a few chunks at a time. A job's copy reports files and bytes as progress
 * and stops, when cancelled, between two files or two chunks (issue 16).
 */
import type { Readable } from 'node:stream';
import type { Stats } from 'ssh2';
import { conflict, invalid, notFound } from '../../errors.js';
import { requireEgress, type BackendAccount, type Element, type ElementContext, type Entry, type StorageInfo, type TransferOptions, type WriteOptions } from '../element.js';
import { tempTag, throwIfStopped, type JobContext } from '../../documents/job.js';
import { pausePoint } from '../../testing/pause-points.js';
import { countingBytes } from '../counting.js';
import { UploadFolders, foldersBetween } from '../upload-folders.js';
import { SftpConnection } from './connection.js';
import { HomeConfinement, checkCanonical, isFolder, isLink, linkRefused, lstatOrNull, mkdirAt } from './confine.js';
import { STATUS, sftpError, statusOf } from './errors.js';
import { ConnectionPool, type PoolOptions } from './pool.js';
import { HOST_FINGERPRINT, type SftpSettings } from './settings.js';
import { SftpReadStream } from './streams.js';
import { fillAndPlace, openTemp, removeOwnTemps, removeTaggedTemps } from './transfer.js';
import { forEachLimited, listFolder, removeTree, toEntry, walkFolder } from './tree.js';

/** Connections per element, and how long an unused one stays open. */
export const DEFAULT_POOL: PoolOptions = { max: 4, idleMs: 30_000 };

/** Files of a folder copy streamed at once. */
const COPY_CONCURRENCY = 4;

export class SftpElement implements Element {
  private readonly pool: ConnectionPool<SftpConnection>;
  private readonly home: HomeConfinement;
  private readonly username: string;
  /** The server, as uploads into the same folders on it are told apart (upload-folders.ts). */
  private readonly server: string;

  constructor(settings: SftpSettings, context: ElementContext, pool: PoolOptions = DEFAULT_POOL) {
    this.home = new HomeConfinement(settings.homeDirectory);
    this.username = settings.username;
    this.server = `${settings.host.toLowerCase()}:${settings.port}`;
    const { connect } = requireEgress(context, 'sftp');
    // Trust on first use: without a pinned host key, the first key seen becomes this element's
    // pin and is handed to the instance service to store with the instance (context.learned).
    let pin = settings.fingerprint;
    const open = async () => {
      const connection = await SftpConnection.open({ ...settings, fingerprint: pin }, context.backendTimeoutMs, connect);
      if (pin === null) {
        pin = connection.hostFingerprint;
        context.learned?.({ [HOST_FINGERPRINT]: `SHA256:${pin}` });
      }
      return connection;
    };
    this.pool = new ConnectionPool(open, pool);
  }

  /** Connections open or opening now (tests observe the pool through it). */
  get connections(): number {
    return this.pool.size;
  }

  async ping(): Promise<void> {
    // Resolving the home again is the round trip: realpath + stat of the home folder.
    await this.pool.run((conn) => this.home.refresh(conn), true);
  }

  async storage(): Promise<StorageInfo> {
    return this.pool.run(async (conn) => {
      const home = await this.home.root(conn);
      let info: Record<string, unknown>;
      try {
        info = await conn.call<Record<string, unknown>>((sftp, done) => sftp.ext_openssh_statvfs(home, done));
      } catch (e) {
        if (statusOf(e) === STATUS.OP_UNSUPPORTED) return { total: null, used: null, shared: null };
        throw sftpError(e, '/', 'measure');
      }
      const unit = Number(info.f_frsize) || Number(info.f_bsize);
      const total = Number(info.f_blocks) * unit;
      const free = Number(info.f_bfree) * unit;
      if (!Number.isFinite(total) || !Number.isFinite(free)) return { total: null, used: null, shared: null };
      return { total, used: total - free, shared: null };
    }, true);
  }

  async stat(p: string): Promise<Entry | null> {
    checkCanonical(p);
    return this.pool.run(async (conn) => {
      const found = await this.home.existing(conn, p);
      return found ? toEntry(p, found.stats) : null;
    }, true);
  }

  async *list(p: string): AsyncIterable<Entry> {
    checkCanonical(p);
    const { value: abs, lease } = await this.pool.hold((conn) => this.folder(conn, p), true);
    try {
      yield* listFolder(lease.conn, abs, p);
    } finally {
      lease.release();
    }
  }

  async *walk(p: string): AsyncIterable<Entry> {
    checkCanonical(p);
    const { value: abs, lease } = await this.pool.hold((conn) => this.folder(conn, p), true);
    try {
      yield* walkFolder(lease.conn, abs, p);
    } finally {
      lease.release();
    }
  }

  async read(p: string): Promise<Readable> {
    checkCanonical(p);
    const { value: handle, lease } = await this.pool.hold(async (conn) => {
      const found = await this.home.existing(conn, p);
      if (!found) throw notFound(`${p} does not exist`);
      if (isFolder(found.stats)) throw invalid(`${p} is a folder; only files can be downloaded`);
      try {
        return await conn.call<Buffer>((sftp, done) => sftp.open(found.abs, 'r', done));
      } catch (e) {
        throw sftpError(e, p, 'read');
      }
    }, true);
    return new SftpReadStream(lease.conn, handle, p, () => lease.release());
  }

  async write(p: string, body: Readable, options: WriteOptions = {}): Promise<Entry> {
    const tag = tempTag(options.job);
    checkCanonical(p);
    if (p === '/') throw invalid('a file needs a name: "/" is the root folder');
    const home = await this.pool.run((conn) => this.home.root(conn), true);
    const folder = parentOf(this.home.abs(home, p));
    const chain = folder.length > home.length ? foldersBetween(folder, home === '/' ? '/' : `${home}/`) : [];
    // A write that fails leaves no trace: not even the folders created for the file — unless
    // another upload into them is still running or succeeded (upload-folders.ts).
    const rmdir = (abs: string) => this.pool.run((conn) => conn.call((sftp, done) => sftp.rmdir(abs, done)), true);
    return uploadFolders(this.server).run(chain, rmdir, async (held) => {
      const { value, lease } = await this.pool.hold(async (conn) => {
        const target = await this.home.prepare(conn, p, (made) => held.created([made]));
        if (target.stats && isFolder(target.stats)) throw invalid(`${p} is a folder; a file cannot replace it`);
        if (options.resume) await removeOwnTemps(conn, parentOf(target.abs), p, tag);
        return { abs: target.abs, temp: await openTemp(conn, target.abs, p, tag) };
      }, true);
      try {
        await fillAndPlace(lease.conn, body, value.temp, value.abs, p, options.job?.signal);
        return toEntry(p, await this.written(lease.conn, value.abs, p));
      } finally {
        lease.release();
      }
    });
  }

  async mkdir(p: string): Promise<Entry> {
    checkCanonical(p);
    return this.pool.run(async (conn) => {
      if (p === '/') {
        const root = await this.home.existing(conn, '/');
        if (!root) throw notFound('the home directory does not exist');
        return toEntry('/', root.stats);
      }
      const target = await this.home.prepare(conn, p);
      if (target.stats) {
        if (isFolder(target.stats)) return toEntry(p, target.stats);
        if (isLink(target.stats)) throw linkRefused(p);
        throw conflict(`${p} already exists as a file`);
      }
      await mkdirAt(conn, target.abs, p, p);
      return toEntry(p, await this.written(conn, target.abs, p));
    }, true);
  }

  async remove(p: string): Promise<void> {
    checkCanonical(p);
    if (p === '/') throw invalid('the root folder of an instance cannot be deleted');
    // Idempotent enough to retry: a retry finishes a half-done recursive delete.
    await this.pool.run(async (conn) => {
      const found = await this.home.existing(conn, p);
      if (!found) throw notFound(`${p} does not exist`);
      if (isFolder(found.stats)) {
        await removeTree(conn, found.abs, p);
        return;
      }
      try {
        await conn.call((sftp, done) => sftp.unlink(found.abs, done));
      } catch (e) {
        throw sftpError(e, p, 'delete');
      }
    }, true);
  }

  async move(from: string, to: string, _options?: TransferOptions): Promise<void> {
    // A rename is atomic: a re-run never finds half a move to finish here.
    checkTransfer(from, to, 'moved');
    const { value, lease } = await this.pool.hold((conn) => this.endpoints(conn, from, to), true);
    try {
      await lease.conn.call((sftp, done) => sftp.rename(value.source.abs, value.target, done));
    } catch (e) {
      if (statusOf(e) === STATUS.FAILURE && (await lstatOrNull(lease.conn, value.target, to))) {
        throw conflict(`${to} already exists`);
      }
      throw sftpError(e, from, 'move');
    } finally {
      lease.release();
    }
  }

  async copy(from: string, to: string, options: TransferOptions = {}): Promise<void> {
    checkTransfer(from, to, 'copied');
    const tag = tempTag(options.job);
    const resume = options.resume === true;
    const { value, lease } = await this.pool.hold((conn) => this.endpoints(conn, from, to, resume), true);
    try {
      const { source, target, present } = value;
      if (!isFolder(source.stats)) {
        if (resume) await removeOwnTemps(lease.conn, parentOf(target), to, tag);
        // A file appears only by rename: one already there is the complete copy.
        if (!present) await copyFile(lease.conn, source.abs, target, from, to, tag, options.job);
        return;
      }
      await mkdirAt(lease.conn, target, to, to);
      // The whole source tree is listed before anything is copied, so a copy can never chase
      // its own output, and folders exist before the files that go in them. A resumed copy
      // keeps the files already in place (complete: they appear only by rename).
      const inPlace = async (folderAbs: string, folder: string) =>
        present ? removeOwnTemps(lease.conn, folderAbs, folder, tag) : new Set<string>();
      let placed = await inPlace(target, to);
      const placedIn = new Map<string, Set<string>>([['', placed]]);
      const files: Entry[] = [];
      for await (const entry of walkFolder(lease.conn, source.abs, from)) {
        const suffix = entry.path.slice(from.length);
        if (entry.directory) {
          const created = await mkdirAt(lease.conn, target + suffix, to + suffix, to);
          placedIn.set(suffix, created ? new Set() : await inPlace(target + suffix, to + suffix));
          continue;
        }
        placed = placedIn.get(suffix.slice(0, suffix.lastIndexOf('/'))) ?? new Set();
        if (!placed.has(suffix.slice(suffix.lastIndexOf('/') + 1))) files.push(entry);
      }
      const job = options.job;
      job?.progress({ itemsTotal: files.length, bytesTotal: files.reduce((sum, f) => sum + f.size, 0) });
      await forEachLimited(files, COPY_CONCURRENCY, async (file) => {
        // The safe point between two files (issue 16): files copied so far stay.
        if (job) await pausePoint('copy-file', job.eventId, job.signal);
        throwIfStopped(job);
        const suffix = file.path.slice(from.length);
        await this.pool.run((conn) => copyFile(conn, source.abs + suffix, target + suffix, file.path, to + suffix, tag, job), false);
        job?.progress({ items: 1 });
      });
    } finally {
      lease.release();
    }
  }

  async removeTemps(p: string, tag: string, tree: boolean): Promise<void> {
    checkCanonical(p);
    await this.pool.run(async (conn) => {
      const found = await this.home.existing(conn, p);
      if (!found || !isFolder(found.stats)) return;
      await removeTaggedTemps(conn, found.abs, p, tag, tree);
    }, true);
  }

  /** The SFTP attributes of the object (what `ls -l` shows), for `?raw=true`. */
  async raw(p: string): Promise<Record<string, unknown> | null> {
    checkCanonical(p);
    return this.pool.run(async (conn) => {
      const found = await this.home.existing(conn, p);
      if (!found) return null;
      const s = found.stats;
      return {
        type: isFolder(s) ? 'directory' : 'file',
        permissions: (s.mode & 0o7777).toString(8),
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
        size: s.size,
        atime: s.atime,
        mtime: s.mtime,
      };
    }, true);
  }

  /** The SFTP user the instance logs in as. */
  async account(): Promise<BackendAccount> {
    return { id: this.username, name: this.username };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** The server path of the existing folder at `p`, or notFound / invalid. */
  private async folder(conn: SftpConnection, p: string): Promise<string> {
    const found = await this.home.existing(conn, p);
    if (!found) throw notFound(`${p} does not exist`);
    if (!isFolder(found.stats)) throw invalid(`${p} is a file, not a folder`);
    return found.abs;
  }

  /**
   * Confines both ends of a move or copy: the source exists, the target does not — unless
   * `resume`, where it may be the job's own partial copy (of the same kind).
   */
  private async endpoints(conn: SftpConnection, from: string, to: string, resume = false) {
    const source = await this.home.existing(conn, from);
    if (!source) throw notFound(`${from} does not exist`);
    const target = await this.home.prepare(conn, to);
    if (target.stats && !(resume && !isLink(target.stats) && isFolder(target.stats) === isFolder(source.stats))) {
      throw conflict(`${to} already exists`);
    }
    return { source, target: target.abs, present: target.stats !== null && target.stats !== undefined };
  }

  private async written(conn: SftpConnection, abs: string, p: string): Promise<Stats> {
    const stats = await lstatOrNull(conn, abs, p);
    if (!stats) throw notFound(`${p} vanished right after it was written`);
    return stats;
  }
}

/**
 * Folders created for uploads in flight, per server: the instances of this process that reach
 * the same server (by the name they are configured with) share them, as uploads through two
 * instances with the same home write into the same folders.
 */
const UPLOAD_FOLDERS = new Map<string, UploadFolders>();

function uploadFolders(server: string): UploadFolders {
  let folders = UPLOAD_FOLDERS.get(server);
  if (!folders) UPLOAD_FOLDERS.set(server, (folders = new UploadFolders()));
  return folders;
}

/** The server folder holding `abs`. */
function parentOf(abs: string): string {
  return abs.slice(0, abs.lastIndexOf('/')) || '/';
}

function checkTransfer(from: string, to: string, action: string): void {
  checkCanonical(from);
  checkCanonical(to);
  if (from === '/') throw invalid(`the root folder of an instance cannot be ${action}`);
  if (to === '/' || to === from) throw conflict(`${to} already exists`);
  if (to.startsWith(`${from}/`)) throw invalid(`a folder cannot be ${action} into itself (${from} → ${to})`);
}

/**
 * Streams one server file to a new temp file and renames it into place. With a `job`, its bytes
 * are reported as progress, and its signal stops the copy between two chunks (the temp file is
 * removed).
 */
async function copyFile(conn: SftpConnection, fromAbs: string, toAbs: string, from: string, to: string, tag = '', job?: JobContext): Promise<void> {
  let handle: Buffer;
  try {
    handle = await conn.call<Buffer>((sftp, done) => sftp.open(fromAbs, 'r', done));
  } catch (e) {
    throw sftpError(e, from, 'read');
  }
  const read = new SftpReadStream(conn, handle, from, () => undefined);
  const source = job?.eventId !== undefined ? countingBytes(read, (bytes) => job.progress({ bytes })) : read;
  let temp;
  try {
    temp = await openTemp(conn, toAbs, to, tag);
  } catch (e) {
    source.destroy();
    throw e;
  }
  await fillAndPlace(conn, source, temp, toAbs, to, job?.signal);
}
