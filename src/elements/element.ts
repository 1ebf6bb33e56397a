/**
 * The element (connector) interface: the primitive storage operations one backend must offer.
 *
 * Contract shared by every implementation (localfs, amazons3, sftp):
 * - Every `path` handed to an element is already normalised and lexically confined by the
 *   documents service (`documents/paths.ts`): it is absolute relative to the instance root
 *   ("/" is the root, "/a/b.txt" a file), has no "." or ".." segment, no empty segment, no NUL,
 *   and no trailing slash. The element maps it onto its own root (a folder, a bucket prefix, an
 *   SFTP home directory) and must make sure the backend cannot follow it outside that root
 *   (symlinks), which lexical checks cannot see.
 * - Missing objects: `stat` returns null; other operations throw `notFound` (errors.ts).
 * - Backend failures throw `backendFailed` / `backendTimeout` with the backend's own text in
 *   `providerMessage` — never a credential.
 * - Tags, change events, paging, ordering, filtering and overwrite rules are NOT the element's
 *   business: the documents service does them above all backends.
 * - No torn files (issue 25): a file appears under its final name only when complete — written
 *   under a temporary name `.ferry-upload-<tag><16 hex>.tmp` in the same folder and renamed
 *   (localfs, SFTP), or one PUT / a completed multipart upload (S3). `<tag>` is `e<eventId>-`
 *   for an async job (job.ts `tempTag`), so a re-run finds what its crashed run left, and
 *   `s<8 hex>-` for a synchronous request (the node run's tag, documents/sync-temps.ts), so the
 *   next start removes what a crash left (`removeTemps`). Temporary names are never listed,
 *   searched or copied.
 * - `resume` (write, copy, move): the target may hold this job's own half-finished earlier
 *   attempt of the same operation (the documents service knows from its journal). The element
 *   removes the job's leftover temporary files (and stale multipart uploads), keeps what is
 *   complete and does the rest.
 */
import type { Readable } from 'node:stream';
import type { JobContext } from '../documents/job.js';

/** One object as a backend sees it. */
export interface Entry {
  /** Normalised path relative to the instance root, e.g. "/a/b.txt". */
  path: string;
  directory: boolean;
  /** Bytes; 0 for folders. */
  size: number;
  createdDate?: Date;
  modifiedDate?: Date;
  /**
   * The backend's own version token, where listings give one (localfs: the inode, S3: the
   * ETag). Change polling (src/changes/) compares it with size and modification time.
   */
  version?: string;
}

/** One stored version of a file, as the backend keeps it. */
export interface Revision {
  /** The backend's version id (S3 VersionId). */
  id: string;
  size: number;
  modifiedDate?: Date;
  /** Whether this is the version a download returns. */
  current: boolean;
}

/** The backend account an instance acts as. */
export interface BackendAccount {
  id: string | null;
  name: string | null;
}

export interface StorageInfo {
  total: number | null;
  used: number | null;
  shared: number | null;
}

export interface WriteOptions {
  /** Content type the client declared, for backends that keep one (S3). */
  contentType?: string;
  /** The job writing (its event id names its temporary files). */
  job?: JobContext;
  /** This job's own earlier attempt may have left temporary files or a multipart upload: clean them. */
  resume?: boolean;
}

export interface TransferOptions {
  /** The job copying or moving (its event id names its temporary files). */
  job?: JobContext;
  /**
   * `to` may exist as this job's own half-finished earlier attempt: complete it — files already
   * under their final names are complete (and kept), the job's temporary files are removed.
   */
  resume?: boolean;
}

export interface Element {
  /** Round trip to the backend; throws when it does not answer. */
  ping(): Promise<void>;
  storage(): Promise<StorageInfo>;
  /** The object at `path`, or null when nothing is there. */
  stat(path: string): Promise<Entry | null>;
  /** Direct children of the folder at `path` (any order). Throws notFound when absent. */
  list(path: string): AsyncIterable<Entry>;
  /**
   * Every descendant of the folder at `path`, folders included (any order). Optional: the
   * service falls back to recursive `list` calls. Backends with a flat namespace (S3) do it
   * in far fewer round trips.
   */
  walk?(path: string): AsyncIterable<Entry>;
  /**
   * `list` (or, `recursive`, `walk`) a batch of entries at a time. Optional: change polling
   * (src/changes/) rereads whole trees every few seconds, and a backend whose listing is local
   * (localfs) saves a promise per entry this way; others fall back to `walk`/`list`.
   */
  batches?(path: string, recursive: boolean): AsyncIterable<Entry[]>;
  /** A stream of the file's bytes. Throws notFound when absent. */
  read(path: string): Promise<Readable>;
  /**
   * Writes the stream to `path` (replacing a file there), creating missing parent folders.
   * Must stream: never hold the whole body in memory. Returns the written object.
   */
  write(path: string, body: Readable, options?: WriteOptions): Promise<Entry>;
  /** Creates the folder and any missing parents; no error when it exists. */
  mkdir(path: string): Promise<Entry>;
  /** Removes a file, or a folder with everything under it. Throws notFound when absent. */
  remove(path: string): Promise<void>;
  /**
   * Moves/renames a file or folder; `to` does not exist (the service checks) unless `resume`;
   * creates parents.
   */
  move(from: string, to: string, options?: TransferOptions): Promise<void>;
  /**
   * Copies a file or a folder recursively to `to` (which does not exist unless `resume`; parents
   * are created). Backends copy server-side where they can (S3 CopyObject): no object bytes
   * through Ferry.
   */
  copy(from: string, to: string, options?: TransferOptions): Promise<void>;
  /**
   * The backend's own description of the object at `path` (an S3 HeadObject answer, SFTP or
   * file-system attributes), for `?raw=true`; null when nothing is there. Optional: without it
   * the service shows the element's Entry. Must never contain a credential.
   */
  raw?(path: string): Promise<Record<string, unknown> | null>;
  /**
   * The stored versions of the file at `path`, newest first, or null when the backend keeps no
   * versions (the service then shows the current file as the one revision). Optional.
   */
  revisions?(path: string): Promise<Revision[] | null>;
  /** The account the backend acts as (S3 bucket owner, SFTP user), or null when it has none. */
  account?(): Promise<BackendAccount | null>;
  /** The backend's own expiring link to the file (a presigned URL), or null when it has none. */
  providerLink?(path: string, expiresInSeconds: number): Promise<string | null>;
  /**
   * Removes the temporary files whose names carry `tag` (job.ts `tempTag`, never empty) in the
   * folder at `path` — and, with `tree`, in every folder below it: what a node that died in the
   * middle of a synchronous write left there (documents/sync-temps.ts). Nothing else is
   * touched, and nothing there (no folder, no such file) is no error. Optional: an element
   * without temporary names (S3) has none to remove.
   */
  removeTemps?(path: string, tag: string, tree: boolean): Promise<void>;
  /** Releases connections; the element is not used afterwards. */
  close(): Promise<void>;
}

/** One configuration key an element accepts, as the catalog shows it. */
export interface ConfigKey {
  key: string;
  name: string;
  required: boolean;
  /** Secrets are encrypted at rest and masked as "********" on read. */
  secret: boolean;
  default?: string;
  description?: string;
  /**
   * The value names where Ferry will connect (`url`: an http(s) URL, `host`: a host name or
   * address): it must pass the egress policy before an instance may use it.
   */
  egress?: 'url' | 'host';
}

/** What an element's factory may need from the host. */
export interface ElementContext {
  /** Operator's base folder for localfs roots (FERRY_LOCALFS_BASE). */
  localfsBase: string;
  /** Timeout for one backend operation, in milliseconds. */
  backendTimeoutMs: number;
  /**
   * The egress policy at connect time: every backend connection is opened through its `connect`
   * (directly, or through `guardedAgents` for HTTP clients), so an address that is refused now —
   * an IP literal stored while it was allowed, or a name that resolves (or rebinds) to a refused
   * address — is never connected to. Elements that connect out refuse to work without it
   * (`requireEgress`); only elements that never connect out (localfs) may be built without.
   */
  egress?: {
    connect: import('../async/egress-connect.js').GuardedConnect;
  };
  /**
   * Called with configuration values the backend taught the element (an SFTP server's host
   * key, trusted on first use): the instance service stores them with the instance.
   */
  learned?: (values: Record<string, string>) => void;
  /**
   * Tells the operator something the element could not do and a person may have to (an S3
   * server that cannot list multipart uploads a crash left): the node logs it as a warning.
   */
  warn?: (details: Record<string, unknown>, message: string) => void;
}

/** A connector in the catalog, and the factory of its instances' backends. */
export interface ElementDefinition {
  id: number;
  key: string;
  name: string;
  hub: 'documents';
  description: string;
  configuration: ConfigKey[];
  /**
   * Validates the configuration (throwing `invalid` naming the bad key) and returns a ready
   * element. Must not contact the backend: the caller pings it.
   */
  create(configuration: Record<string, string>, context: ElementContext): Element;
}

/** Keys every element accepts, on top of its own. */
export const COMMON_CONFIG_KEYS: ConfigKey[] = [
  { key: 'event.notification.enabled', name: 'Events enabled', required: false, secret: false, default: 'false' },
  { key: 'event.notification.callback.url', name: 'Callback URL', required: false, secret: false },
  { key: 'event.notification.signature.key', name: 'Webhook signature key', required: false, secret: true },
];

/**
 * The egress policy of a context, for an element that connects out. Fails closed: an element
 * built without the policy would connect anywhere, so that is a programming error.
 */
export function requireEgress(context: ElementContext, elementKey: string): NonNullable<ElementContext['egress']> {
  if (!context.egress) throw new Error(`the ${elementKey} element needs the egress policy in its ElementContext`);
  return context.egress;
}
