/**
 * Document paths: normalisation, lexical confinement and object ids. Pure functions used by the
 * documents service above every element, so each backend receives only canonical paths
 * (see the contract in `elements/element.ts`).
 *
 * Canonical form: "/" is the instance root; otherwise "/" followed by segments joined by "/",
 * with no empty segment, no "." or ".." segment, no trailing "/".
 *
 * Choices, and why:
 * - Every ".." segment is rejected, even one that would stay inside the root ("/a/../b"). Real
 *   clients never need it, and refusing is simpler to reason about than resolving it. The
 *   message says the path must stay inside the instance's root.
 * - "." and empty segments ("//", trailing "/") are dropped: they cannot move a path anywhere.
 * - A backslash is refused rather than treated as an ordinary character, so no Windows-style
 *   spelling ("\..\") can ever be read as a separator by some backend or tool downstream.
 * - Control characters (C0 U+0000–U+001F, U+007F, and C1 U+0080–U+009F), the bidirectional
 *   embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069: they can make
 *   "invoice\u202Efdp.exe" display as "invoiceexe.pdf") and lone UTF-16 surrogates (which have no UTF-8
 *   form) are refused; every other Unicode character, spaces included, is allowed.
 * - A segment may hold at most 255 UTF-8 bytes (the usual file-system limit), the whole path at
 *   most `maxLength` characters (FERRY_MAX_PATH).
 * - The HTTP layer URL-decodes a query value exactly once. Whatever percent sequences remain
 *   after that ("%2e%2e", "%2f") are literal characters of a name: they are not separators and
 *   are never decoded again, so they cannot smuggle a traversal past these checks.
 *
 * Object ids (DESIGN §1.4): `encodeURIComponent` applied twice, so "/" becomes "%252F". Placed in
 * a URL segment, the HTTP layer decodes it once (to "%2F..."), and `pathFromId` decodes it the
 * second time.
 */
import { invalid } from '../errors.js';

/** Longest single name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

/** The root of every instance. */
export const ROOT = '/';

// Control characters, bidirectional controls and the backslash; see the module header.
const FORBIDDEN_CHAR = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\\]/;
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;
// With the `u` flag a proper surrogate pair is one code point, so this finds only lone halves.
const LONE_SURROGATE = /\p{Cs}/u;

function describeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  if (c === '\\') return 'a backslash';
  const kind = BIDI_CONTROL.test(c) ? 'bidirectional control character' : 'control character';
  return `the ${kind} U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Throws `invalid` unless `segment` may be one name in a path (not "", ".", ".."). */
function checkSegment(segment: string, what: string): void {
  const bad = FORBIDDEN_CHAR.exec(segment);
  if (bad) throw invalid(`${what} contains ${describeChar(bad[0])}, which is not allowed in a name`);
  if (LONE_SURROGATE.test(segment)) throw invalid(`${what} contains an unpaired UTF-16 surrogate, which is not valid text`);
  if (Buffer.byteLength(segment, 'utf8') > MAX_NAME_BYTES) {
    throw invalid(`${what} has a name longer than ${MAX_NAME_BYTES} bytes (UTF-8); use a shorter name`);
  }
}

/**
 * Turns a client path (a `?path=` value or a body `path`, already URL-decoded once) into the
 * canonical form, or throws `invalid` saying what is wrong. "" and "/" are the root.
 */
export function normalisePath(raw: string, maxLength: number): string {
  if (typeof raw !== 'string') throw invalid('path must be a string such as "/folder/file.txt"');
  const segments: string[] = [];
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      throw invalid(`path "${printable(raw)}" contains "..": paths must stay inside the instance's root`);
    }
    checkSegment(segment, `path "${printable(raw)}"`);
    segments.push(segment);
  }
  const path = '/' + segments.join('/');
  if (path.length > maxLength) {
    throw invalid(`path is ${path.length} characters long; the limit is ${maxLength}`);
  }
  return path;
}

/**
 * Throws `invalid` unless `name` may be a single new name ("b.txt", not "a/b", "..", "").
 * Returns it unchanged.
 */
export function validateName(name: string): string {
  if (typeof name !== 'string' || name === '') throw invalid('name must not be empty');
  if (name.includes('/')) throw invalid(`name "${printable(name)}" must not contain "/"`);
  if (name === '.' || name === '..') throw invalid(`"${name}" is not a valid name`);
  checkSegment(name, `name "${printable(name)}"`);
  return name;
}

/** The object id of a canonical path: the path encoded twice (DESIGN §1.4). */
export function objectId(path: string): string {
  return encodeURIComponent(encodeURIComponent(path));
}

/**
 * The canonical path of an id as it arrives from the router, i.e. after the HTTP layer
 * decoded the URL segment once ("%2Fa" → "/a"). Throws `invalid` for a malformed id or one
 * whose path would not be valid.
 */
export function pathFromId(id: string, maxLength: number): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(id);
  } catch {
    throw invalid(`id "${printable(id)}" is not a valid object id (bad percent-encoding); use the id Ferry returned`);
  }
  return normalisePath(decoded, maxLength);
}

/** The folder holding `path`, or null for the root. */
export function parentPath(path: string): string | null {
  if (path === ROOT) return null;
  const i = path.lastIndexOf('/');
  return i <= 0 ? ROOT : path.slice(0, i);
}

/** The last segment of `path` ("" for the root). */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The canonical path of `name` inside `folder`; the name is validated. */
export function joinPath(folder: string, name: string): string {
  validateName(name);
  return folder === ROOT ? `/${name}` : `${folder}/${name}`;
}

/** True when `path` is `folder` itself or lies anywhere under it (both canonical). */
export function isWithin(path: string, folder: string): boolean {
  if (folder === ROOT) return true;
  return path === folder || path.startsWith(folder + '/');
}

/** A bounded, control-free rendering of client text for error messages. */
function printable(text: string): string {
  const shown = text.length > 120 ? `${text.slice(0, 120)}…` : text;
  return shown.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
