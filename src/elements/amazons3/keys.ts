/**
 * Mapping between Ferry's canonical paths ("/a/b.txt", "/" for the root) and S3 object keys.
 *
 * Glossary:
 * - key: an S3 object key, e.g. "a/b.txt". The instance root is the bucket root, so a path's
 *   key is the path without its leading "/".
 * - prefix: the key prefix that holds a folder's descendants, "a/" for "/a" and "" for "/".
 * - marker: the zero-byte object whose key is a folder's prefix ("a/"); it makes an empty
 *   folder exist, since S3 itself has no folders.
 *
 * Keys written by other tools may not map onto a canonical path ("a//b", "./x"): listings skip
 * them rather than show names no request could address.
 */

/** The object key of a file path. */
export function keyOf(path: string): string {
  return path === '/' ? '' : path.slice(1);
}

/** The key prefix under which a folder's descendants live ("" for the root). */
export function prefixOf(path: string): string {
  return path === '/' ? '' : `${path.slice(1)}/`;
}

/** The path of the folder that holds `path` ("/" for top-level names). */
export function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

/** Joins a folder path and a relative "x/y" tail into a path. */
export function joinPath(folder: string, relative: string): string {
  return folder === '/' ? `/${relative}` : `${folder}/${relative}`;
}

/**
 * True when every "/"-separated segment of `relative` can appear in a canonical path (not
 * empty, not "." or "..").
 */
export function isCanonicalRelative(relative: string): boolean {
  if (relative === '') return false;
  for (const segment of relative.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return false;
  }
  return true;
}

// Characters RFC 3986 allows unescaped inside a path segment besides the unreserved ones.
// Leaving them raw keeps copy sources readable by servers that decode with `decodeURI`
// (s3rver), which would not turn "%26" back into "&"; AWS accepts them either way.
const RAW_SUB_DELIMS = /%(24|26|2C|3A|3B|3D|40)/g;

/**
 * The `x-amz-copy-source` value for an object: "bucket/key", URL-encoded as S3 requires
 * (spaces, non-ASCII, "?", "#", "%" and "+" escaped; "/" kept as the separator).
 */
export function copySource(bucket: string, key: string): string {
  const encoded = key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(RAW_SUB_DELIMS, (m) => decodeURIComponent(m)))
    .join('/');
  return `${bucket}/${encoded}`;
}
