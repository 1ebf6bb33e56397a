/**
 * The node's registry of synchronous writes in flight (issue 25: temporary names are "cleaned up
 * at start"). An async job's temp files carry its event id and its re-run removes them; a
 * synchronous request has no re-run, so what it leaves when the node dies mid-write (a temp file
 * beside its target) is found here at the next start instead.
 *
 * How it works:
 * - Each run of a node writes its sync temp names with a tag of its own, `s<8 hex>-` (job.ts
 *   `tempTag`), and keeps one append-only file in `<dataDir>/sync-temps/`, named by host, pid,
 *   process start time and tag. Before a sync write may create a temp file, the documents
 *   service appends where it writes — instance id, folder (or, for a folder copy, the tree) —
 *   and the entry's end once the write is over (with the next entry, or within a second: one
 *   `write(2)` per sync write). Plain `write(2)`, no fsync: a SIGKILL
 *   loses no written page, so the entry is there for the next start; a power loss may lose it,
 *   and the listings' sweep of temp files idle for an hour (localfs/tree.ts, sftp/tree.ts)
 *   stays the backstop for that.
 * - The file stays small: it is emptied whenever no entry is open and it has grown past
 *   COMPACT_BYTES, and rewritten with only the open entries when a node that is never idle lets
 *   it grow past four times that. An entry is one line of about 50 bytes.
 * - At start, `sweepLeftovers` reads the files of runs that are certainly dead — this host's,
 *   whose process is gone (or is another process now: its start time differs) — and asks each
 *   open entry's element to remove the temp files with that run's tag in that folder or tree
 *   (Element.removeTemps). Only the dead run's tag is matched, so nothing of a live writer is
 *   touched, even on storage several nodes share; and so it needs no walk of an instance's
 *   tree, only of the folders the crashed writes named. It runs in the background after
 *   start: a remote SFTP server that is slow or down never holds up readiness. A file whose
 *   entries could not all be cleaned keeps the rest for the next start.
 * - Nodes of a cluster may share the data dir: each run has its own file, and a file is only
 *   swept by a node on the same host that can tell its owner is dead. A file of a host that
 *   never comes back stays (a few bytes); its temp files go by the hourly sweep.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Past this size, the file is emptied at the next moment no entry is open. */
export const COMPACT_BYTES = 64 * 1024;

/** Where the registries of a data dir live. */
export function syncTempsDir(dataDir: string): string {
  return path.join(dataDir, 'sync-temps');
}

/** Where a synchronous write is about to put temp files, in the registry's terms. */
export interface TempSite {
  instanceId: number;
  /** The folder a file is written into, or the root of a folder copy (`tree`). */
  path: string;
  /** Temp files may appear anywhere below `path` (a folder copy), not only in it. */
  tree: boolean;
}

/** The registry of this run, as the documents service uses it. */
export interface SyncTemps {
  /** The tag of this run's sync temp names, e.g. `s1a2b3c4d-`. */
  readonly tag: string;
  /** Registers `site` (durable against a process crash when it returns); returns its end. */
  enter(site: TempSite): () => void;
}

const SEPARATOR = '~';

/** The registry files of the runs in this process (several servers in one test process). */
const LIVE = new Set<string>();

/** The host name as it may stand in a file name. */
function hostPart(): string {
  return os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_') || 'host';
}

/** Clock ticks since boot at which process `pid` started (Linux), or '0' where unknown. */
function startTime(pid: number | 'self'): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the command name (which may hold spaces) closes with ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  } catch {
    return pid === 'self' ? '0' : null;
  }
}

/** Whether the run that wrote a file named for `pid` started at `started` may still be alive. */
function mayBeAlive(pid: number, started: string): boolean {
  if (pid === process.pid) return false; // our pid, but no run of this process: an earlier one (a container's pid 1)
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, someone else's
  }
  const now = startTime(pid);
  // Alive as the same process only if it started at the same tick (else the pid was reused).
  return now === null ? false : started === '0' || now === started;
}

/** One open (not ended) entry of a registry file. */
interface OpenEntry extends TempSite {
  seq: number;
}

/** Parses a registry file's lines into the entries that were entered and not ended. */
export function openEntries(text: string): TempSite[] {
  const open = new Map<number, OpenEntry>();
  for (const line of text.split('\n')) {
    if (line.startsWith('-')) {
      open.delete(Number(line.slice(1)));
      continue;
    }
    if (!line.startsWith('+')) continue; // a line torn by a full disk
    const [seq, instanceId, kind, ...rest] = line.slice(1).split(' ');
    try {
      const p = JSON.parse(rest.join(' '));
      if (typeof p === 'string' && Number.isInteger(Number(instanceId))) {
        open.set(Number(seq), { seq: Number(seq), instanceId: Number(instanceId), path: p, tree: kind === 't' });
      }
    } catch {
      // torn line: nothing was written under it yet (the write waits for the append)
    }
  }
  return [...open.values()].map(({ instanceId, path: p, tree }) => ({ instanceId, path: p, tree }));
}

function entryLine(seq: number, site: TempSite): string {
  return `+${seq} ${site.instanceId} ${site.tree ? 't' : 'f'} ${JSON.stringify(site.path)}\n`;
}

/** This run's registry file. */
export class SyncTempRegistry implements SyncTemps {
  readonly tag: string;
  readonly file: string;
  private fd: number | null;
  private seq = 0;
  private size = 0;
  private readonly open = new Map<number, string>();
  /** End lines not written yet (see enter). */
  private ended = '';
  private flushLater: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    /** Told (once) when the file cannot be written: the hourly sweep is then the only clean-up. */
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {
    const hex = randomBytes(4).toString('hex');
    this.tag = `s${hex}-`;
    this.file = path.join(dir, [hostPart(), process.pid, startTime('self'), hex].join(SEPARATOR) + '.log');
    fs.mkdirSync(dir, { recursive: true });
    this.fd = fs.openSync(this.file, 'a', 0o600);
    LIVE.add(this.file);
  }

  enter(site: TempSite): () => void {
    const seq = ++this.seq;
    const line = entryLine(seq, site);
    this.open.set(seq, line);
    // Ends ride along with the next entry: one write(2) per sync write.
    this.append(this.ended + line);
    this.ended = '';
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.open.delete(seq);
      if (this.open.size === 0 && this.size > COMPACT_BYTES) return this.compact();
      if (this.size > COMPACT_BYTES * 4) return this.compact();
      // An end lost to a crash costs the next start one needless look into that folder; a node
      // that goes idle writes its ends within a second.
      this.ended += `-${seq}\n`;
      this.flushLater ??= setTimeout(() => this.flushEnds(), 1000).unref();
    };
  }

  private flushEnds(): void {
    this.flushLater = undefined;
    if (this.ended === '') return;
    this.append(this.ended);
    this.ended = '';
  }

  /** Entries open now (tests look). */
  get inFlight(): number {
    return this.open.size;
  }

  private append(line: string): void {
    if (this.fd === null) return;
    try {
      this.size += fs.writeSync(this.fd, line);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Keeps only the open entries: truncates when there are none, else rewrites the file. */
  private compact(): void {
    this.ended = ''; // what is rewritten below is exactly what is open
    if (this.fd === null) return;
    try {
      if (this.open.size === 0) {
        fs.ftruncateSync(this.fd, 0);
        this.size = 0;
        return;
      }
      const text = [...this.open.values()].join('');
      const next = `${this.file}.new`;
      fs.writeFileSync(next, text, { mode: 0o600 });
      fs.renameSync(next, this.file);
      fs.closeSync(this.fd);
      this.fd = fs.openSync(this.file, 'a', 0o600);
      this.size = Buffer.byteLength(text);
    } catch (e) {
      this.fail(e);
    }
  }

  private fail(e: unknown): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // closed already
      }
    }
    this.fd = null;
    this.onError(e);
  }

  /** At a clean stop: the file goes when no entry is open (else the next start sweeps it). */
  close(): void {
    LIVE.delete(this.file);
    clearTimeout(this.flushLater);
    this.flushEnds();
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
    if (this.open.size === 0) fs.rmSync(this.file, { force: true });
  }
}

/** A registry file of a dead run of this host: its tag and the entries it left open. */
export interface Leftover {
  file: string;
  tag: string;
  sites: TempSite[];
}

/** The registry files in `dir` of this host's runs that are certainly dead. */
export function leftovers(dir: string): Leftover[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: Leftover[] = [];
  for (const name of names) {
    if (!name.endsWith('.log')) continue;
    const file = path.join(dir, name);
    if (LIVE.has(file)) continue;
    const [host, pid, started, hex] = name.slice(0, -4).split(SEPARATOR);
    if (host !== hostPart() || !/^[0-9a-f]{8}$/.test(hex ?? '') || mayBeAlive(Number(pid), started ?? '0')) continue;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // swept meanwhile by another node starting on this host
    }
    out.push({ file, tag: `s${hex}-`, sites: openEntries(text) });
  }
  return out;
}

/**
 * Removes what the dead runs of this host left (see the header): for each open entry,
 * `remove(site, tag)` (the element's removeTemps; false when the instance is gone). A file is
 * deleted once all its entries are done; entries that failed are kept in it for the next start.
 * Returns how many entries were cleaned and how many failed.
 */
export async function sweepLeftovers(
  dir: string,
  remove: (site: TempSite, tag: string) => Promise<void>,
): Promise<{ cleaned: number; failed: number }> {
  let cleaned = 0;
  let failed = 0;
  for (const leftover of leftovers(dir)) {
    const kept: TempSite[] = [];
    // Instances one after another, each instance's entries in order: a start is no burst.
    for (const site of leftover.sites) {
      try {
        await remove(site, leftover.tag);
        cleaned += 1;
      } catch {
        kept.push(site);
        failed += 1;
      }
    }
    try {
      if (kept.length === 0) fs.rmSync(leftover.file, { force: true });
      else fs.writeFileSync(leftover.file, kept.map((site, i) => entryLine(i + 1, site)).join(''), { mode: 0o600 });
    } catch {
      // the next start tries again
    }
  }
  return { cleaned, failed };
}
