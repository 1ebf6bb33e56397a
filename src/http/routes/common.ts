/**
 * Small pieces every route plugin shares: the authentication hooks, paging headers and the
 * schema fragments of common query parameters.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../app.js';
import type { Identity } from '../auth.js';
import { invalid } from '../../errors.js';

export interface PluginOptions {
  services: Services;
}

/** Runs an authentication under the failed-authentication limit of the client's address. */
function authenticate(services: Services, request: FastifyRequest, check: () => Promise<Identity>): Promise<Identity> {
  return services.authFailures ? services.authFailures.guard(request.ip, check) : check();
}

/** onRequest hook for platform routes: User + Organization. */
export function platformAuth(services: Services) {
  return async (request: FastifyRequest) => {
    request.identity = await authenticate(services, request, () => services.auth.platform(request.headers.authorization));
    services.rateLimiter?.take(request.identity.organizationId);
  };
}

/** onRequest hook for hub routes: User + Element, or a replayed job's identity. */
export function hubAuth(services: Services) {
  return async (request: FastifyRequest) => {
    if (request.internal) {
      request.identity = await services.auth.internal(request.internal);
      return;
    }
    request.identity = await authenticate(services, request, () => services.auth.hub(request.headers.authorization));
    services.rateLimiter?.take(request.identity.organizationId);
  };
}

/** The identity set by the auth hook (routes run only after it). */
export function identityOf(request: FastifyRequest): Identity {
  if (!request.identity) throw new Error('route reached without authentication');
  return request.identity;
}

export const DEFAULT_PAGE_SIZE = 200;
export const MAX_PAGE_SIZE = 500;

export const pagingQuery = {
  pageSize: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE },
  nextPage: { type: 'string', maxLength: 512 },
} as const;

/** Sets the platform's paging headers. */
export function pageHeaders(reply: FastifyReply, count: number, next: string | null): void {
  reply.header('Elements-Returned-Count', String(count));
  if (next) reply.header('Elements-Next-Page-Token', next);
}

/** A positive integer id from a URL parameter, or a 400 naming it. */
export function intParam(value: string, name: string): number {
  const n = Number(value);
  if (!/^\d{1,15}$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw invalid(`${name} must be a positive integer, got "${String(value).slice(0, 40)}"`);
  }
  return n;
}

/** `tags[]=a&tags[]=b`, `tags=a` or a JSON body array → a clean string list. */
export function tagList(value: unknown, name = 'tags'): string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length > 100) throw invalid(`${name} may hold at most 100 tags`);
  return list.map((t) => {
    if (typeof t !== 'string' || t.length === 0 || t.length > 255) {
      throw invalid(`${name} must be a list of non-empty strings of at most 255 characters`);
    }
    return t;
  });
}

/** `true`/`false` query flags, with a default. */
export function flag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw invalid(`${name} must be true or false`);
}
