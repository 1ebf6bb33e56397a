/**
 * Parser of the platform's Authorization header:
 *   `User <userSecret>, Organization <orgSecret>[, Element <instanceToken>]`
 * Parts come in any order, separated by commas; names are case-insensitive; spaces around
 * parts are tolerated. A malformed header is a 401 that says what the right form is.
 */
import { unauthenticated } from '../errors.js';

export interface Credentials {
  user?: string;
  organization?: string;
  element?: string;
}

export const AUTH_FORM = 'Authorization: User <userSecret>, Organization <orgSecret>[, Element <instanceToken>]';

export function parseAuthorization(header: string | undefined): Credentials {
  if (!header || !header.trim()) throw unauthenticated(`Missing Authorization header; send ${AUTH_FORM}`);
  if (header.length > 2048) throw unauthenticated('Authorization header is too long');
  const out: Credentials = {};
  for (const part of header.split(',')) {
    const m = /^\s*(user|organization|element)\s+(\S+)\s*$/i.exec(part);
    if (!m) throw unauthenticated(`Malformed Authorization header part; send ${AUTH_FORM}`);
    const name = m[1].toLowerCase() as keyof Credentials;
    if (out[name] !== undefined) throw unauthenticated(`Authorization header names ${m[1]} twice; send ${AUTH_FORM}`);
    out[name] = m[2];
  }
  return out;
}
