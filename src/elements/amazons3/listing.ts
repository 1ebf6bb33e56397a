/**
 * Listing an S3 prefix as folders and files.
 *
 * S3 is flat: a folder is a key prefix, shown by a zero-byte marker object ("a/") or implied by
 * any key below it ("a/b.txt"). ListObjectsV2 returns at most 1,000 keys per page; `pages` walks
 * the continuation tokens lazily, so a caller that stops early never fetches the rest.
 *
 * Some S3-compatible stores repeat a common prefix on several pages (s3rver does), so folder
 * names are de-duplicated by the caller-supplied set.
 */
import type { ListObjectsV2CommandInput, ListObjectsV2CommandOutput, _Object } from '@aws-sdk/client-s3';
import type { Entry } from '../element.js';
import { isCanonicalRelative, joinPath } from './keys.js';

/** Sends one ListObjectsV2 request (with the bucket and error mapping already applied). */
export type ListPage = (input: Omit<ListObjectsV2CommandInput, 'Bucket'>) => Promise<ListObjectsV2CommandOutput>;

/** Every page of a listing, fetched one at a time as the consumer asks. */
export async function* pages(
  listPage: ListPage,
  input: Omit<ListObjectsV2CommandInput, 'Bucket' | 'ContinuationToken'>,
): AsyncGenerator<ListObjectsV2CommandOutput> {
  let token: string | undefined;
  do {
    const page = await listPage({ ...input, ContinuationToken: token });
    yield page;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** The file entry of a listed object. */
export function fileEntry(path: string, object: Pick<_Object, 'Size' | 'LastModified'> & { ETag?: string }): Entry {
  const modified = object.LastModified;
  // S3 objects are immutable: the last write is also when this version was created.
  const entry: Entry = { path, directory: false, size: object.Size ?? 0, createdDate: modified, modifiedDate: modified };
  if (object.ETag) entry.version = object.ETag;
  return entry;
}

/** A folder entry, dated by its marker when one was seen. */
export function folderEntry(path: string, marker?: Date): Entry {
  return { path, directory: true, size: 0, createdDate: marker, modifiedDate: marker };
}

/**
 * The direct children of `folder` found in one page of a delimited listing of `prefix`.
 * The folder's own marker is skipped; `seen` collects folder names across pages.
 */
export function childrenOfPage(
  folder: string,
  prefix: string,
  page: ListObjectsV2CommandOutput,
  seen: Set<string>,
): Entry[] {
  const out: Entry[] = [];
  for (const common of page.CommonPrefixes ?? []) {
    const name = (common.Prefix ?? '').slice(prefix.length, -1);
    if (!isCanonicalRelative(name) || name.includes('/') || seen.has(name)) continue;
    seen.add(name);
    out.push(folderEntry(joinPath(folder, name)));
  }
  for (const object of page.Contents ?? []) {
    const name = (object.Key ?? '').slice(prefix.length);
    if (!isCanonicalRelative(name) || name.includes('/')) continue;
    out.push(fileEntry(joinPath(folder, name), object));
  }
  return out;
}

/**
 * The entries one object of an undelimited listing of `prefix` stands for: each ancestor folder
 * between `folder` and the object not yet in `seen`, then the object itself unless it is a
 * folder marker.
 */
export function descendantsOfObject(folder: string, prefix: string, object: _Object, seen: Set<string>): Entry[] {
  const relative = (object.Key ?? '').slice(prefix.length);
  if (relative === '') return []; // the folder's own marker
  const isMarker = relative.endsWith('/');
  const relativePath = isMarker ? relative.slice(0, -1) : relative;
  if (!isCanonicalRelative(relativePath)) return [];
  const segments = relativePath.split('/');
  const folderDepth = isMarker ? segments.length : segments.length - 1;
  const out: Entry[] = [];
  for (let depth = 1; depth <= folderDepth; depth += 1) {
    const name = segments.slice(0, depth).join('/');
    if (seen.has(name)) continue;
    seen.add(name);
    out.push(folderEntry(joinPath(folder, name), isMarker && depth === folderDepth ? object.LastModified : undefined));
  }
  if (!isMarker) out.push(fileEntry(joinPath(folder, relativePath), object));
  return out;
}
