/**
 * Opaque page cursors of the store: an integer position, base64url-encoded so clients treat it
 * as a token. A malformed cursor is the caller's mistake (`invalid`), not a server error.
 */
import { invalid } from '../errors.js';

export function encodeCursor(position: number): string {
  return Buffer.from(`c${position}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const raw = Buffer.from(cursor, 'base64url').toString();
  const n = Number(raw.slice(1));
  if (raw[0] !== 'c' || !Number.isSafeInteger(n) || n < 0) {
    throw invalid('nextPage is not a page token Ferry issued: pass the Elements-Next-Page-Token of the previous page');
  }
  return n;
}
