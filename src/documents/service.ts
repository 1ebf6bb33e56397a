/**
 * The documents service: the documents hub's behaviour above every element. It owns what must
 * be identical on every backend — the object model and ids, tags (kept by Ferry per instance
 * and path, following moves, copies and deletes), overwrite and conflict rules, paging,
 * ordering and filtering — and records every object it creates, changes or deletes into the
 * request's change log, which the async runner turns into `response.events` (DESIGN §1.5).
 *
 * Paths reaching this service are canonical (paths.ts); the element below does the storage.
 *
 * Crash recovery (issue 25): an async job runs with a job context carrying its event id
 * (job.ts). Before the first write of an operation the service journals its intent in the
 * job's journal (the job context's, kept in the store: `JobJournalStore`; one entry per
 * operation and destination, e.g. `copy:/dst`); a re-run that finds its
 * own entry knows that whatever is at the destination is its own half-finished work, so it
 * resumes — skipping what is complete, replacing what is half made — instead of answering 409,
 * and reports the same `changes` an uncrashed run would (a delete journals the objects it is
 * about to remove, since a re-run can no longer see them). Only what someone else put there
 * is refused.
 *
 * Cancellation (issue 16): the job context's signal stops an operation at the element's next
 * safe point; a copy stopped that way reports, in `changes`, the objects it had finished.
 */
import type { Readable } from 'node:stream';
import type { Element, Entry } from '../elements/element.js';
import { descendants, entryBatches } from '../elements/walk.js';
import { conflict, invalid, isFerryError, notFound } from '../errors.js';
import type { TagStore } from '../store/store.js';
import { crashPoint } from '../testing/crash-points.js';
import { SYNC_JOB, throwIfStopped, type JobContext } from './job.js';
import { decodeCursor, encodeCursor } from '../store/cursor.js';
import { parseOrderBy, parseWhere } from './ceql.js';
import { isoDate } from './iso-date.js';
import { mimeType } from './mime.js';
import { baseName, isWithin, joinPath, objectId, parentPath, ROOT } from './paths.js';

/**
 * Check-then-act sequences ("nothing is there" → write) must not interleave for one
 * destination, or two concurrent uploads without `overwrite` both pass the check and both
 * answer 200 while one silently replaces the other. Operations that create something at a path
 * run one at a time per (instance, path) in this process. (Several nodes sharing one backend
 * need the element to create without replacing; see the element contract.)
 */
const busyPaths = new Map<string, Promise<void>>();

/** Names of Ferry's temporary files on every element (element.ts): hidden, so never a user's. */
const RESERVED_NAME = /^\.ferry-upload-.*\.tmp$/;

/** Refuses a destination whose name is reserved for temp files (it would be invisible). */
function refuseReservedName(path: string): void {
  if (RESERVED_NAME.test(baseName(path))) {
    throw invalid(`${baseName(path)} is reserved for Ferry's temporary files (.ferry-upload-*.tmp); choose another name`);
  }
}

async function exclusive<T>(instanceId: number, path: string, work: () => Promise<T>): Promise<T> {
  const key = `${instanceId}\u0000${path}`;
  const previous = busyPaths.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
  busyPaths.set(key, mine);
  await previous;
  try {
    return await work();
  } finally {
    release();
    if (busyPaths.get(key) === mine) busyPaths.delete(key);
  }
}

/** A file or folder as the hub API shows it. */
export interface DocumentObject {
  id: string;
  name: string;
  path: string;
  directory: boolean;
  size: number;
  createdDate: string | null;
  modifiedDate: string | null;
  tags: string[];
  parentFolderId: string | null;
  properties: { mimeType: string | null };
}

/** One entry of an async notification's `response.events`. */
export interface ChangeEvent {
  /** The destination path as the request named it. */
  path: string;
  metadata: {
    id: string;
    path: string;
    name: string;
    type: 'file' | 'folder';
    size: number;
    createdDate: string | null;
    modifiedDate: string | null;
    deleted?: boolean;
  };
}

export interface ListOptions {
  pageSize: number;
  nextPage?: string;
  /** 1-based page number (the platform's `page`); `nextPage` wins when both are given. */
  page?: number;
  where?: string;
  orderBy?: string;
  fetchTags?: boolean;
  /** Keep only objects modified at or after / before this instant (search's startDate/endDate). */
  modifiedFrom?: Date;
  modifiedBefore?: Date;
}

export interface ListResult {
  items: DocumentObject[];
  next: string | null;
  /** How many objects match over all pages (the Elements-Total-Count header). */
  total: number;
}

export class DocumentsService {
  /** Objects created, changed or deleted by this request, in order. */
  readonly changes: ChangeEvent[] = [];

  constructor(
    private readonly element: Element,
    private readonly instanceId: number,
    private readonly tags: TagStore,
    /**
     * Whether `changes` is wanted (a replayed async job reports it in its webhook). Without it a
     * folder copy or move does not walk the result to list every descendant.
     */
    private readonly recordChanges = true,
    /** The job this request runs as: an async event's, or SYNC_JOB. */
    private readonly job: JobContext = SYNC_JOB,
  ) {}

  /** This job's journal entry under `key` (parsed), or null: never one for a sync request. */
  private async ownIntent<T = Record<string, unknown>>(key: string): Promise<T | null> {
    if (!this.job.journal) return null;
    const value = await this.job.journal.get(key);
    return value === null ? null : (JSON.parse(value) as T);
  }

  /**
   * Runs a write that may leave temp files at `site` (`tree`: anywhere below it) if the node
   * dies mid-way. A synchronous request registers the site first (sync-temps.ts), so the next
   * start removes them; an async job needs not (its re-run does), nor an element without temp
   * names.
   */
  private async registered<T>(site: string, tree: boolean, write: () => Promise<T>): Promise<T> {
    const temps = this.job.eventId === undefined ? this.job.syncTemps : undefined;
    if (!temps || !this.element.removeTemps) return write();
    const leave = temps.enter({ instanceId: this.instanceId, path: site, tree });
    try {
      return await write();
    } finally {
      leave();
    }
  }

  /** Journals this job's intent under `key` before its first write (nothing for a sync request). */
  private async intend(key: string, value: unknown = {}): Promise<void> {
    await this.job.journal?.put(key, JSON.stringify(value));
    crashPoint('before-write');
  }

  ping(): Promise<void> {
    return this.element.ping();
  }

  storage() {
    return this.element.storage();
  }

  /** The object at `path`; `expect` makes a file/folder mismatch a clear 400. */
  async metadata(path: string, expect?: 'file' | 'folder'): Promise<DocumentObject> {
    const entry = await this.require(path, expect);
    return this.present(entry);
  }

  async upload(
    path: string,
    body: Readable,
    options: { overwrite: boolean; tags?: string[]; contentType?: string },
  ): Promise<DocumentObject> {
    if (path === ROOT) throw invalid('path must name a file, not the root folder');
    refuseReservedName(path);
    return exclusive(this.instanceId, path, () => this.uploadNow(path, body, options));
  }

  private async uploadNow(
    path: string,
    body: Readable,
    options: { overwrite: boolean; tags?: string[]; contentType?: string },
  ): Promise<DocumentObject> {
    const key = `upload:${path}`;
    const mine = (await this.ownIntent(key)) !== null;
    const existing = await this.element.stat(path);
    if (existing?.directory) throw conflict(`${path} is a folder; choose another file path`);
    if (existing && !options.overwrite && !mine) {
      throw conflict(`A file already exists at ${path}; pass overwrite=true to replace it`);
    }
    await this.requireParentNotFile(path);
    throwIfStopped(this.job);
    if (!mine) await this.intend(key);
    const entry = await this.registered(parentPath(path) ?? ROOT, false, () =>
      this.element.write(path, body, { contentType: options.contentType, job: this.job, resume: mine }),
    );
    if (options.tags !== undefined) await this.tags.setTags(this.instanceId, path, options.tags);
    else if (existing) await this.tags.deleteTags(this.instanceId, path);
    return this.record(path, entry);
  }

  async download(path: string): Promise<{ object: DocumentObject; stream: Readable }> {
    const entry = await this.require(path, 'file');
    const stream = await this.element.read(path);
    return { object: await this.present(entry), stream };
  }

  async remove(path: string, expect: 'file' | 'folder'): Promise<void> {
    if (path === ROOT) throw invalid('The root folder cannot be deleted; delete what is inside it instead');
    const key = `remove:${path}`;
    const journaled = await this.ownIntent<{ changes: ChangeEvent[] }>(key);
    if (journaled) {
      // A re-run: finish what the crashed run began, and report what it removed.
      if (await this.element.stat(path)) await this.element.remove(path);
      await this.tags.deleteTags(this.instanceId, path);
      this.changes.push(...journaled.changes);
      return;
    }
    const entry = await this.require(path, expect);
    const removed: Entry[] = [];
    if (entry.directory) for await (const d of descendants(this.element, path)) removed.push(d);
    const changes = [entry, ...removed].map((e) => this.deletedChange(e.path, e));
    // What is about to vanish is journaled: a re-run could not list it any more.
    if (this.job.journal) await this.intend(key, { changes });
    await this.element.remove(path);
    await this.tags.deleteTags(this.instanceId, path);
    this.changes.push(...changes);
  }

  async createFolder(path: string, tags?: string[]): Promise<DocumentObject> {
    if (path === ROOT) throw conflict('The root folder already exists');
    refuseReservedName(path);
    return exclusive(this.instanceId, path, () => this.createFolderNow(path, tags));
  }

  private async createFolderNow(path: string, tags?: string[]): Promise<DocumentObject> {
    const key = `mkdir:${path}`;
    const mine = (await this.ownIntent(key)) !== null;
    const existing = await this.element.stat(path);
    if (existing && !(mine && existing.directory)) throw conflict(`Something already exists at ${path}; choose another folder path`);
    await this.requireParentNotFile(path);
    if (!mine) await this.intend(key);
    const entry = await this.element.mkdir(path);
    if (tags?.length) await this.tags.setTags(this.instanceId, path, tags);
    return this.record(path, entry);
  }

  /**
   * Copies a file or folder. `requestedPath` is the destination as the request named it (the
   * change log reports it); `actualPath` is where the copy lands (folder copies may rename the
   * last segment with `name`).
   */
  async copy(
    from: string,
    requestedPath: string,
    actualPath: string,
    options: { expect: 'file' | 'folder'; overwrite: boolean; tags?: string[] },
  ): Promise<DocumentObject> {
    const source = await this.require(from, options.expect);
    if (actualPath === ROOT) throw invalid('The destination path must not be the root folder');
    refuseReservedName(actualPath);
    if (from === actualPath) throw conflict(`Source and destination are both ${from}; choose another destination`);
    if (source.directory && isWithin(actualPath, from)) {
      throw invalid(`Cannot copy the folder ${from} into itself (${actualPath}); choose a destination outside it`);
    }
    const key = `copy:${actualPath}`;
    const mine = (await this.ownIntent(key)) !== null;
    return exclusive(this.instanceId, actualPath, async () => {
      // A re-run's destination is its own half-finished copy: completed, not cleared or refused.
      throwIfStopped(this.job);
      if (!mine) {
        await this.clearDestination(actualPath, options.overwrite);
        await this.intend(key, { from });
      }
      try {
        // A folder copy writes temp files all over its tree; a file copy beside its target.
        const site = source.directory ? actualPath : (parentPath(actualPath) ?? ROOT);
        await this.registered(site, source.directory, () => this.element.copy(from, actualPath, { job: this.job, resume: mine }));
      } catch (e) {
        // Cancelled mid-way (issue 16): what the copy finished stays, and is what it reports.
        if (isFerryError(e, 'cancelled') && (await this.element.stat(actualPath))) await this.recordTree(requestedPath, actualPath);
        throw e;
      }
      await this.tags.copyTags(this.instanceId, from, actualPath);
      if (options.tags !== undefined) await this.tags.setTags(this.instanceId, actualPath, options.tags);
      return this.recordTree(requestedPath, actualPath);
    });
  }

  /**
   * PATCH of metadata: `path` moves/renames, `tags` replaces the tags. Without `expect` it acts
   * on whatever the path names (the platform's metadata routes do, whichever kind they name).
   */
  async update(
    path: string,
    expect: 'file' | 'folder' | undefined,
    patch: { path?: string; tags?: string[] },
    overwrite = false,
  ): Promise<DocumentObject> {
    const moving = patch.path !== undefined && patch.path !== path;
    const moveKey = `move:${patch.path}`;
    if (moving && (await this.ownIntent(moveKey)) !== null) {
      return this.resumeMove(path, patch.path as string, expect, patch.tags);
    }
    const entry = await this.require(path, expect);
    let current = path;
    if (moving && patch.path !== undefined) {
      if (path === ROOT) throw invalid('The root folder cannot be moved');
      if (entry.directory && isWithin(patch.path, path)) {
        throw invalid(`Cannot move the folder ${path} into itself (${patch.path}); choose a destination outside it`);
      }
      if (patch.path === ROOT) throw invalid('The destination path must not be the root folder');
      refuseReservedName(patch.path);
      const to = patch.path;
      await exclusive(this.instanceId, to, async () => {
        await this.clearDestination(to, overwrite);
        await this.intend(moveKey, { from: path });
        // A move is a rename, except across a mount point (localfs), where it copies.
        await this.registered(entry.directory ? to : (parentPath(to) ?? ROOT), entry.directory, () => this.element.move(path, to, { job: this.job }));
        await this.tags.moveTags(this.instanceId, path, to);
      });
      current = to;
    }
    if (patch.tags !== undefined) await this.tags.setTags(this.instanceId, current, patch.tags);
    if (entry.directory && current !== path) return this.recordTree(current, current);
    const moved = await this.require(current);
    return this.record(current, moved);
  }

  /**
   * A re-run of a move this job journaled: whatever is at `to` is its own. A source still there
   * is moved (on S3, where a folder move is copy + delete, the rest of it); a source gone means
   * the move itself finished before the crash.
   */
  private async resumeMove(
    path: string,
    to: string,
    expect: 'file' | 'folder' | undefined,
    tags: string[] | undefined,
  ): Promise<DocumentObject> {
    await exclusive(this.instanceId, to, async () => {
      if (await this.element.stat(path)) {
        await this.element.move(path, to, { job: this.job, resume: true });
        await this.tags.moveTags(this.instanceId, path, to);
      } else if (!(await this.hasTagsAt(to))) {
        // The move finished; its tags may not have followed yet (moveTags clears `to` first, so
        // it runs only while nothing there has tags: they would be the moved ones).
        await this.tags.moveTags(this.instanceId, path, to);
      }
    });
    if (tags !== undefined) await this.tags.setTags(this.instanceId, to, tags);
    const moved = await this.require(to, expect);
    if (moved.directory) return this.recordTree(to, to);
    return this.record(to, moved);
  }

  /** Whether the object at `path`, or anything under it, has tags. */
  private async hasTagsAt(path: string): Promise<boolean> {
    const paths = [path];
    const entry = await this.element.stat(path);
    if (entry?.directory) for await (const e of descendants(this.element, path)) paths.push(e.path);
    return (await this.tags.getTags(this.instanceId, paths)).size > 0;
  }

  /** One page of a folder's children, filtered and ordered. */
  async list(path: string, options: ListOptions): Promise<ListResult> {
    await this.require(path, 'folder');
    const entries: Entry[] = [];
    for await (const e of this.element.list(path)) entries.push(e);
    return this.page(entries, options);
  }

  /**
   * Recursive, case-insensitive name search under `path`. Without `text` (the platform makes it
   * optional) it lists everything under `path`, which clients use to enumerate a tree.
   */
  async search(text: string | undefined, path: string, options: ListOptions): Promise<ListResult> {
    await this.require(path, 'folder');
    const needle = text ? text.toLowerCase() : '';
    const found: Entry[] = [];
    for await (const e of descendants(this.element, path)) {
      if (needle && !baseName(e.path).toLowerCase().includes(needle)) continue;
      if (options.modifiedFrom && !(e.modifiedDate && e.modifiedDate >= options.modifiedFrom)) continue;
      if (options.modifiedBefore && !(e.modifiedDate && e.modifiedDate < options.modifiedBefore)) continue;
      found.push(e);
    }
    return this.page(found, options);
  }

  /** Every object under `path`, streamed in the element's order in batches (bulk exports, issue 17). */
  walkBatches(path: string): AsyncIterable<Entry[]> {
    return entryBatches(this.element, path, true);
  }

  /** Entries shaped as objects, with their tags in one lookup (bulk exports, issue 17). */
  presentMany(entries: Entry[]): Promise<DocumentObject[]> {
    return this.presentAll(entries, true);
  }

  /** Shapes entries as objects, with tags. */
  async present(entry: Entry): Promise<DocumentObject> {
    const [object] = await this.presentAll([entry], true);
    return object;
  }

  private async presentAll(entries: Entry[], withTags: boolean): Promise<DocumentObject[]> {
    const tags = withTags ? await this.tags.getTags(this.instanceId, entries.map((e) => e.path)) : new Map();
    // Entries come a folder at a time: its id is encoded once, not once per entry.
    let lastParent: string | null | undefined;
    let parentId: string | null = null;
    return entries.map((e) => {
      const parent = parentPath(e.path);
      if (parent !== lastParent) {
        lastParent = parent;
        parentId = parent === null ? null : objectId(parent);
      }
      const name = baseName(e.path);
      return {
        id: objectId(e.path),
        name: e.path === ROOT ? '' : name,
        path: e.path,
        directory: e.directory,
        size: e.directory ? 0 : e.size,
        createdDate: e.createdDate ? isoDate(e.createdDate) : null,
        modifiedDate: e.modifiedDate ? isoDate(e.modifiedDate) : null,
        tags: tags.get(e.path) ?? [],
        parentFolderId: parentId,
        properties: { mimeType: e.directory ? null : mimeType(name) },
      };
    });
  }

  private async page(entries: Entry[], options: ListOptions): Promise<ListResult> {
    let rows = entries.map((e) => ({ ...e, name: baseName(e.path) }));
    if (options.where) {
      const keep = parseWhere(options.where);
      rows = rows.filter(keep);
    }
    const order = options.orderBy ? parseOrderBy(options.orderBy) : parseOrderBy('directory desc, name');
    rows.sort(order);
    const start = options.nextPage
      ? decodeCursor(options.nextPage)
      : ((options.page ?? 1) - 1) * options.pageSize;
    const slice = rows.slice(start, start + options.pageSize);
    const end = start + slice.length;
    return {
      items: await this.presentAll(slice, options.fetchTags !== false),
      next: end < rows.length ? encodeCursor(end) : null,
      total: rows.length,
    };
  }

  private async require(path: string, expect?: 'file' | 'folder'): Promise<Entry> {
    const entry = await this.element.stat(path);
    if (!entry) throw notFound(`Nothing exists at ${path}`);
    if (expect === 'file' && entry.directory) {
      throw invalid(`${path} is a folder; use the /folders routes for folders`);
    }
    if (expect === 'folder' && !entry.directory) throw invalid(`${path} is a file; use the /files routes for files`);
    return entry;
  }

  private async requireParentNotFile(path: string): Promise<void> {
    for (let p = parentPath(path); p !== null && p !== ROOT; p = parentPath(p)) {
      const e = await this.element.stat(p);
      if (e && !e.directory) throw conflict(`${p} is a file, so nothing can be created under it`);
      if (e) return;
    }
  }

  private async clearDestination(path: string, overwrite: boolean): Promise<void> {
    const existing = await this.element.stat(path);
    if (existing && !overwrite) throw conflict(`Something already exists at ${path}; pass overwrite=true to replace it`);
    await this.requireParentNotFile(path);
    if (existing) {
      await this.element.remove(path);
      await this.tags.deleteTags(this.instanceId, path);
    }
  }

  private async record(requestedPath: string, entry: Entry): Promise<DocumentObject> {
    const object = await this.present(entry);
    this.changes.push({ path: requestedPath, metadata: this.metadataOf(entry) });
    return object;
  }

  /** Records a folder (or file) and every descendant, reported under `requestedPath`. */
  private async recordTree(requestedPath: string, actualPath: string): Promise<DocumentObject> {
    const root = await this.require(actualPath);
    const object = await this.present(root);
    this.changes.push({ path: requestedPath, metadata: this.metadataOf(root) });
    if (root.directory && this.recordChanges) {
      const all: Entry[] = [];
      for await (const e of descendants(this.element, actualPath)) all.push(e);
      all.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      for (const e of all) {
        this.changes.push({ path: requestedPath + e.path.slice(actualPath.length), metadata: this.metadataOf(e) });
      }
    }
    return object;
  }

  private deletedChange(requestedPath: string, entry: Entry): ChangeEvent {
    return { path: requestedPath, metadata: { ...this.metadataOf(entry), deleted: true } };
  }

  private metadataOf(e: Entry): ChangeEvent['metadata'] {
    return {
      id: objectId(e.path),
      path: e.path,
      name: baseName(e.path),
      type: e.directory ? 'folder' : 'file',
      size: e.directory ? 0 : e.size,
      createdDate: e.createdDate ? e.createdDate.toISOString() : null,
      modifiedDate: e.modifiedDate ? e.modifiedDate.toISOString() : null,
    };
  }

  /** joinPath re-exported for the routes: a destination `name` replacing the last segment. */
  static renamed(path: string, name: string): string {
    const parent = parentPath(path) ?? ROOT;
    return joinPath(parent, name);
  }
}
