/**
 * Confinement of an sftp instance to its home directory, against what the lexical checks done
 * above every element cannot see: symbolic links on the server.
 *
 * Policy (the same idea as localfs): Ferry never follows a symbolic link below the home.
 * - An existing object is used only when `lstat` says it is a regular file or a folder and the
 *   server's `realpath` of its path is that very path (so no link on the way, and nothing
 *   outside the real home). Anything else is invisible: `stat` says nothing is there and every
 *   operation that needs the object answers `notFound`; `list`/`walk`/`copy` skip links.
 * - Before creating something, the deepest existing ancestor must be a real folder inside the
 *   real home; when a link (or a folder resolving elsewhere) is found instead, creation is
 *   refused with `forbidden` — nothing is ever written through a link.
 * - Files are created under a fresh temp name with O_EXCL (which never follows a link) and
 *   renamed into place.
 * The home directory itself may be (or lie under) a link: it is resolved once with `realpath`
 * and everything is compared against that real path. What remains is a race with a server user
 * who swaps a folder for a link between check and use; nobody can do that through Ferry.
 */
import type { Attributes, Stats } from 'ssh2';
import { forbidden, invalid } from '../../errors.js';
import type { SftpConnection } from './connection.js';
import { STATUS, sftpError, statusOf } from './errors.js';
import { HOME_DIRECTORY } from './settings.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export const isFolder = (a: Attributes): boolean => (a.mode & S_IFMT) === S_IFDIR;
export const isFile = (a: Attributes): boolean => (a.mode & S_IFMT) === S_IFREG;
export const isLink = (a: Attributes): boolean => (a.mode & S_IFMT) === S_IFLNK;

/**
 * Refuses a path that is not canonical (see elements/element.ts). The documents service
 * guarantees canonical paths; this second check costs nothing and keeps a slip there from
 * ever becoming "../" on the server.
 */
export function checkCanonical(p: string): void {
  const ok =
    typeof p === 'string' &&
    p.startsWith('/') &&
    !p.includes('\0') &&
    (p === '/' || p.slice(1).split('/').every((s) => s !== '' && s !== '.' && s !== '..'));
  if (!ok) throw invalid(`"${String(p).slice(0, 200)}" is not a canonical path inside the instance`);
}

/** The folder that holds `p` ("/" for top-level names and for "/"). */
export function parentOf(p: string): string {
  const at = p.lastIndexOf('/');
  return at <= 0 ? '/' : p.slice(0, at);
}

/** An instance path below `folder` ("/" + name at the root). */
export function childOf(folder: string, name: string): string {
  return folder === '/' ? `/${name}` : `${folder}/${name}`;
}

/** `lstat` of a server path, or null when nothing is there. */
export async function lstatOrNull(conn: SftpConnection, abs: string, p: string): Promise<Stats | null> {
  try {
    return await conn.call<Stats>((sftp, done) => sftp.lstat(abs, done));
  } catch (e) {
    if (statusOf(e) === STATUS.NO_SUCH_FILE) return null;
    throw sftpError(e, p, 'inspect');
  }
}

/** `realpath` of a server path, or null when it cannot be resolved because something is missing. */
async function realpathOrNull(conn: SftpConnection, abs: string, p: string): Promise<string | null> {
  try {
    return await conn.call<string>((sftp, done) => sftp.realpath(abs, done));
  } catch (e) {
    if (statusOf(e) === STATUS.NO_SUCH_FILE) return null;
    throw sftpError(e, p, 'inspect');
  }
}

/** The instance's home directory on the server and the checks that keep paths inside it. */
export class HomeConfinement {
  private real: Promise<string> | undefined;

  /** `configured` is the home_directory setting, or null for the login folder. */
  constructor(private readonly configured: string | null) {}

  /** The real absolute path of the home (memoised after the first success). */
  root(conn: SftpConnection): Promise<string> {
    this.real ??= this.resolveRoot(conn).catch((e: unknown) => {
      this.real = undefined;
      throw e;
    });
    return this.real;
  }

  /** Resolves the home again now (ping uses it, so a vanished home is reported). */
  refresh(conn: SftpConnection): Promise<string> {
    this.real = undefined;
    return this.root(conn);
  }

  private async resolveRoot(conn: SftpConnection): Promise<string> {
    const shown = this.configured === null ? 'the login folder' : `'${HOME_DIRECTORY}' (${this.configured})`;
    const missing = () =>
      invalid(
        this.configured === null
          ? 'The SFTP server reports no usable login folder; set home_directory.'
          : `The configuration key '${HOME_DIRECTORY}' names ${this.configured}, which is not a folder on the SFTP server.`,
      );
    const real = await realpathOrNull(conn, this.configured ?? '.', shown);
    if (real === null) throw missing();
    const stats = await conn.call<Stats>((sftp, done) => sftp.stat(real, done)).catch((e: unknown) => {
      if (statusOf(e) === STATUS.NO_SUCH_FILE) throw missing();
      throw sftpError(e, shown, 'open');
    });
    if (!isFolder(stats)) throw missing();
    return real;
  }

  /** The server path of instance path `p` under the real home. */
  abs(home: string, p: string): string {
    if (p === '/') return home;
    return home === '/' ? p : home + p;
  }

  /**
   * The attributes of the regular file or folder at `p`, or null when nothing visible is there
   * (missing, a link, a special file, or reached through a link).
   */
  async existing(conn: SftpConnection, p: string): Promise<{ abs: string; stats: Stats } | null> {
    const home = await this.root(conn);
    const abs = this.abs(home, p);
    // Both requests go out together: one round trip.
    const [stats, real] = await Promise.all([
      lstatOrNull(conn, abs, p),
      p === '/' ? Promise.resolve(abs) : realpathOrNull(conn, abs, p),
    ]);
    if (!stats || !(isFile(stats) || isFolder(stats))) return null;
    if (real !== abs) return null;
    return { abs, stats };
  }

  /**
   * Makes sure `p` can be created: its deepest existing ancestor is a real folder inside the
   * home (no link on the way), then creates the missing folders above `p`. Returns the server
   * path of `p` and the `lstat` of whatever is at `p` itself now (null when nothing). A link
   * there is the caller's to judge: replacing the link entry (rename over it) is safe, going
   * through it is not. `made` learns of each folder created, as soon as it is (server path):
   * a caller undoing a failed write learns of them even when a later step fails.
   */
  async prepare(conn: SftpConnection, p: string, made?: (folderAbs: string) => void): Promise<{ abs: string; stats: Stats | null }> {
    const home = await this.root(conn);
    const abs = this.abs(home, p);
    const parent = parentOf(p);
    const missing: string[] = [];
    let folder = parent;
    for (;;) {
      if (folder === '/') break; // the real home itself
      const folderAbs = this.abs(home, folder);
      const [stats, real] = await Promise.all([lstatOrNull(conn, folderAbs, folder), realpathOrNull(conn, folderAbs, folder)]);
      if (stats) {
        if (isLink(stats) || (isFolder(stats) && real !== folderAbs)) throw linkRefused(p);
        if (!isFolder(stats)) throw invalid(`cannot create ${p}: ${folder} is a file, not a folder`);
        break;
      }
      missing.push(folder);
      folder = parentOf(folder);
    }
    for (const f of missing.reverse()) {
      const folderAbs = this.abs(home, f);
      if (await mkdirAt(conn, folderAbs, f, p)) made?.(folderAbs);
    }
    const stats = p === '/' ? null : await lstatOrNull(conn, abs, p);
    return { abs, stats };
  }
}

/**
 * Creates one folder (at server path `abs`, instance path `folder`) whose parent exists;
 * tolerates a folder made meanwhile. `forPath` is what the caller is creating, for messages.
 * True when this call created it.
 */
export async function mkdirAt(conn: SftpConnection, abs: string, folder: string, forPath: string): Promise<boolean> {
  try {
    await conn.call((sftp, done) => sftp.mkdir(abs, done));
    return true;
  } catch (e) {
    // OpenSSH answers FAILURE for "exists": look at what is there now.
    const stats = await lstatOrNull(conn, abs, folder);
    if (stats && isFolder(stats)) return false;
    if (stats && isLink(stats)) throw linkRefused(forPath);
    if (stats) throw invalid(`cannot create ${forPath}: ${folder} is a file, not a folder`);
    throw sftpError(e, folder, 'create');
  }
}

/** The refusal to create something through (or in place of) a symbolic link. */
export function linkRefused(p: string) {
  return forbidden(`${p} passes through a symbolic link on the SFTP server; Ferry does not follow symbolic links.`);
}
