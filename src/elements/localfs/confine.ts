/**
 * Confinement of a localfs instance to its root folder, against what lexical checks cannot
 * see: symbolic links (and a root configured through one).
 *
 * Policy: Ferry never creates symbolic links and never follows one. A symlink anywhere under
 * the root is invisible — `stat` says nothing is there, `list`/`walk`/`copy` skip it — and a
 * path that passes *through* one (a symlinked folder on the way) is refused. The checks:
 * - an existing object is used only when it is a regular file or folder (`lstat`) and the
 *   `realpath` of its absolute path is that path itself (no symlink on the way);
 * - before creating something, the deepest existing ancestor must be a real folder whose
 *   `realpath` is itself; the missing folders below it are then created by Ferry;
 * - files are opened with O_NOFOLLOW, so a link swapped in at the last component fails.
 * What remains is a race with someone who can create symlinks on the host between a check and
 * the following call; nobody can through Ferry. Hard links cannot be told from files and are
 * out of scope (only a host user can make one).
 *
 * `ping` re-checks the root (see Confinement.refresh): fully at most once per
 * ROOT_CHECK_TTL_MS, and in between with a single `lstat` of the resolved root.
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { lstatSync, type Stats } from 'node:fs';
import { backendFailed, invalid } from '../../errors.js';
import { errorCode, fsError, isMissing } from './fs-errors.js';

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Validates the `root` configuration value and returns its segments: relative to the base,
 * "/"-separated, no "..", no backslash or control character, at least one real segment (the
 * base itself is shared by every instance, so it is never a root).
 */
export function rootSegments(root: unknown): string[] {
  const hint = "a folder relative to FERRY_LOCALFS_BASE, such as 'team-a/documents'";
  if (typeof root !== 'string' || root.trim() === '') throw invalid(`configuration key 'root' is required: ${hint}`);
  if (root.startsWith('/') || path.isAbsolute(root) || /^[A-Za-z]:/.test(root)) {
    throw invalid(`configuration key 'root' must be relative, not an absolute path: ${hint}`);
  }
  if (root.includes('\\') || CONTROL.test(root)) {
    throw invalid(`configuration key 'root' must not contain a backslash or control character: ${hint}`);
  }
  const segments = root.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw invalid(`configuration key 'root' must not contain "..": ${hint}`);
  if (segments.length === 0) throw invalid(`configuration key 'root' must name a folder below the base: ${hint}`);
  if (segments.some((s) => Buffer.byteLength(s) > 255)) throw invalid(`configuration key 'root' has a name over 255 bytes`);
  return segments;
}

/** An instance path is canonical (see elements/element.ts); refuse anything else outright. */
export function checkCanonical(p: string): void {
  const ok =
    typeof p === 'string' &&
    p.startsWith('/') &&
    !p.includes('\0') &&
    (p === '/' || p.slice(1).split('/').every((s) => s !== '' && s !== '.' && s !== '..'));
  if (!ok) throw invalid(`"${String(p).slice(0, 200)}" is not a canonical path inside the instance`);
}

/** `lstat`, or null when nothing is there. */
export async function lstatOrNull(abs: string, p: string): Promise<Stats | null> {
  try {
    return await lstat(abs);
  } catch (e) {
    if (isMissing(e)) return null;
    throw fsError(e, p, 'inspect');
  }
}

/**
 * How long `refresh` (ping) trusts a successful full root check. The full check (base mkdir +
 * realpath, then lstat — and mkdir if missing — per segment) was ~5 % of all CPU under a ping
 * load. Within this window a ping only `lstat`s the resolved root and requires the same folder
 * (device and inode, not a symlink): a root deleted or replaced — by a symlink or by another
 * folder — fails that at once and falls through to the full check, which answers exactly as
 * before (a symlink: the same backend error; deleted: re-created). What one `lstat` of the full
 * path cannot see is a symlink swapped in *above* the root (a segment or the base replaced by a
 * link to where the folder was moved); the full check catches that when the window ends.
 */
export const ROOT_CHECK_TTL_MS = 1000;

const symlinkRefused = (p: string) =>
  invalid(`${p} passes through a symbolic link; Ferry does not follow symbolic links`);

/** Resolves and confines one instance's root; creates it on first use. */
export class Confinement {
  private real: Promise<string> | undefined;
  /** The last successful full check: the root, its identity, when the check started. */
  private checked: { real: string; dev: number; ino: number; at: number } | undefined;

  constructor(
    private readonly base: string,
    private readonly segments: string[],
  ) {}

  /** The real absolute path of the root, created if missing (memoised). */
  root(): Promise<string> {
    this.real ??= this.ensureRoot().catch((e: unknown) => {
      this.forget();
      throw e;
    });
    return this.real;
  }

  /**
   * Re-checks (and re-creates) the root; `ping` uses it. Cheaply within ROOT_CHECK_TTL_MS of
   * the last full check, fully after it or when the cheap check fails.
   */
  async refresh(): Promise<string> {
    const checked = this.checked;
    if (checked && performance.now() - checked.at < ROOT_CHECK_TTL_MS) {
      // Synchronous on purpose: one lstat of a folder just checked costs ~2 µs here, while the
      // promise version's round trip through libuv's pool costs ~25 µs of CPU.
      let s: Stats | undefined;
      try {
        s = lstatSync(checked.real, { throwIfNoEntry: false });
      } catch {
        s = undefined;
      }
      if (s?.isDirectory() && s.dev === checked.dev && s.ino === checked.ino) return checked.real;
    }
    this.forget();
    return this.root();
  }

  /** Drops what is known about the root: the next use checks (and re-creates) it in full. */
  private forget(): void {
    this.real = undefined;
    this.checked = undefined;
  }

  /**
   * Creates the base if missing, then walks the root's segments one by one below the base's
   * real path, creating missing ones and refusing symlinks, so a root can never land outside
   * the base whatever the operator's tree holds.
   */
  private async ensureRoot(): Promise<string> {
    const started = performance.now();
    const shown = `root '${this.segments.join('/')}'`;
    const fail = (what: string, e?: unknown) =>
      backendFailed(`the localfs ${shown} ${what}`, { providerMessage: errorCode(e) ?? what, cause: e });
    const inspect = async (abs: string) => {
      try {
        return await lstat(abs);
      } catch (e) {
        if (errorCode(e) === 'ENOENT') return null;
        throw fail('cannot be inspected', e);
      }
    };
    let current: string;
    try {
      await mkdir(this.base, { recursive: true });
      current = await realpath(this.base);
    } catch (e) {
      throw fail('cannot be used: the base folder (FERRY_LOCALFS_BASE) is not reachable', e);
    }
    let stats: Stats | null = null;
    for (const segment of this.segments) {
      current = path.join(current, segment);
      stats = await inspect(current);
      if (!stats) {
        try {
          await mkdir(current);
        } catch (e) {
          if (errorCode(e) !== 'EEXIST') throw fail('cannot be created', e);
        }
        stats = await inspect(current);
      }
      if (!stats) throw fail('cannot be created');
      if (stats.isSymbolicLink()) throw fail('passes through a symbolic link, which Ferry does not follow');
      if (!stats.isDirectory()) throw fail('is not a folder');
    }
    // rootSegments guarantees at least one segment, so `stats` is the root's own.
    this.checked = { real: current, dev: stats!.dev, ino: stats!.ino, at: started };
    return current;
  }

  /** Absolute host path of instance path `p` under the real root. */
  abs(root: string, p: string): string {
    return p === '/' ? root : root + p;
  }

  /**
   * The stats of the regular file or folder at `p`, or null when nothing visible is there
   * (missing, a symlink, a special file, or reached through a symlink).
   */
  async existing(root: string, p: string): Promise<{ abs: string; stats: Stats } | null> {
    const abs = this.abs(root, p);
    const stats = await lstatOrNull(abs, p);
    if (!stats || !(stats.isFile() || stats.isDirectory())) return null;
    let real: string;
    try {
      real = await realpath(abs);
    } catch (e) {
      if (isMissing(e)) return null;
      throw fsError(e, p, 'inspect');
    }
    return real === abs ? { abs, stats } : null;
  }

  /**
   * Makes sure the folders above `p` are usable for creating `p`: the deepest existing one is
   * a real folder inside the root (no symlink on the way), then creates the missing ones.
   * Returns the absolute path of the topmost folder it created, or undefined.
   */
  async prepareParents(root: string, p: string): Promise<string | undefined> {
    const parent = p.slice(0, p.lastIndexOf('/')) || '/';
    let folder = parent;
    for (;;) {
      const abs = this.abs(root, folder);
      const stats = await lstatOrNull(abs, folder);
      if (stats) {
        if (stats.isSymbolicLink()) throw symlinkRefused(p);
        if (!stats.isDirectory()) throw invalid(`cannot create ${p}: ${folder} is a file, not a folder`);
        let real: string;
        try {
          real = await realpath(abs);
        } catch (e) {
          throw fsError(e, folder, 'inspect');
        }
        if (real !== abs) throw symlinkRefused(p);
        break;
      }
      if (folder === '/') {
        this.forget(); // someone removed the root behind our back: re-create it next time
        throw backendFailed("the instance's root folder is missing; it is re-created on the next request", {
          providerMessage: 'ENOENT',
        });
      }
      folder = folder.slice(0, folder.lastIndexOf('/')) || '/';
    }
    if (folder !== parent) {
      try {
        return await mkdir(this.abs(root, parent), { recursive: true });
      } catch (e) {
        const code = errorCode(e);
        if (code === 'EEXIST' || code === 'ENOTDIR') throw invalid(`cannot create ${p}: a part of the path is a file, not a folder`);
        throw fsError(e, parent, 'create');
      }
    }
    return undefined;
  }
}
