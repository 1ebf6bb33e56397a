/**
 * What the backend itself says, beside the hub's object model: an object's raw description
 * (`?raw=true` on the metadata routes), a file's revisions (`/files/revisions`), and the account
 * an instance acts as (`/hubs/documents/me`). Elements offer these optionally; where one does
 * not, this module answers from what every element has (stat), the same way on every backend.
 */
import type { Element, Entry, Revision } from '../elements/element.js';
import { invalid, notFound } from '../errors.js';
import { mimeType } from './mime.js';
import { baseName, objectId } from './paths.js';

/** A file revision as the hub shows it. */
export interface RevisionObject {
  id: string;
  fileId: string;
  fileName: string;
  path: string;
  size: number;
  createdDate: string | null;
  modifiedDate: string | null;
  current: boolean;
  mimeType: string | null;
}

/** The backend account as `/me` shows it. */
export interface AccountObject {
  id: string | null;
  name: string | null;
  emailAddress: string | null;
  /** Where the identity comes from: the backend, or Ferry's own user when the backend has none. */
  source: 'backend' | 'ferry';
}

/** The backend's own description of the object (or the element's Entry when it has none). */
export async function rawOf(element: Element, entry: Entry): Promise<Record<string, unknown>> {
  const raw = element.raw ? await element.raw(entry.path) : null;
  if (raw) return raw;
  return {
    path: entry.path,
    directory: entry.directory,
    size: entry.size,
    createdDate: entry.createdDate?.toISOString() ?? null,
    modifiedDate: entry.modifiedDate?.toISOString() ?? null,
  };
}

async function fileAt(element: Element, path: string): Promise<Entry> {
  const entry = await element.stat(path);
  if (!entry) throw notFound(`Nothing exists at ${path}`);
  if (entry.directory) throw invalid(`${path} is a folder; only files have revisions`);
  return entry;
}

/** The id of the one revision a backend without versions has: it changes when the file does. */
function currentRevisionId(entry: Entry): string {
  return `${entry.modifiedDate?.getTime() ?? 0}-${entry.size}`;
}

function present(path: string, r: Revision): RevisionObject {
  const name = baseName(path);
  const date = r.modifiedDate ? r.modifiedDate.toISOString() : null;
  return {
    id: r.id,
    fileId: objectId(path),
    fileName: name,
    path,
    size: r.size,
    createdDate: date,
    modifiedDate: date,
    current: r.current,
    mimeType: mimeType(name),
  };
}

/** Every revision of the file at `path`, newest first. */
export async function revisionsOf(element: Element, path: string): Promise<RevisionObject[]> {
  const entry = await fileAt(element, path);
  const kept = element.revisions ? await element.revisions(path) : null;
  const list: Revision[] =
    kept && kept.length > 0
      ? kept
      : [{ id: currentRevisionId(entry), size: entry.size, modifiedDate: entry.modifiedDate, current: true }];
  return list.map((r) => present(path, r));
}

/** One revision of the file at `path`. */
export async function revisionOf(element: Element, path: string, revisionId: string): Promise<RevisionObject> {
  const found = (await revisionsOf(element, path)).find((r) => r.id === revisionId);
  if (!found) {
    throw notFound(`The file ${path} has no revision "${revisionId}"; GET /files/revisions?path=${path} lists them`);
  }
  return found;
}

/** The account the instance acts as; Ferry's user when the backend has no account of its own. */
export async function accountOf(
  element: Element,
  ferryUser: { id: number; emailAddress: string | null; firstName: string | null; lastName: string | null },
): Promise<AccountObject> {
  const account = element.account ? await element.account() : null;
  if (account) return { id: account.id, name: account.name, emailAddress: null, source: 'backend' };
  const name = [ferryUser.firstName, ferryUser.lastName].filter(Boolean).join(' ') || null;
  return { id: String(ferryUser.id), name, emailAddress: ferryUser.emailAddress, source: 'ferry' };
}
