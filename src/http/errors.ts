/**
 * The one place where errors become HTTP responses. Domain errors (errors.ts) map by kind;
 * Fastify's own errors (validation, body parsing, size limits) map by code; anything else is
 * logged with its stack and answered with a generic 500 — no internal detail reaches a client.
 * Every error body is `{requestId, message, providerMessage?}`.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError, type ErrorKind } from '../errors.js';

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  unsupported_media: 415,
  rate_limited: 429,
  unavailable: 503,
  backend: 502,
  backend_timeout: 504,
  // A replayed job stopped by a cancel: the webhook says `cancelled`, this code is its statusCode.
  cancelled: 409,
};

export interface ErrorBody {
  requestId: string;
  message: string;
  providerMessage?: string;
}

/** Status and body for any thrown value. */
export function describeError(error: unknown, requestId: string): { status: number; body: ErrorBody; retryAfter?: number } {
  if (error instanceof FerryError) {
    const body: ErrorBody = { requestId, message: error.message };
    if (error.providerMessage) body.providerMessage = error.providerMessage;
    return { status: STATUS[error.kind], body, retryAfter: error.retryAfter };
  }
  const e = error as FastifyError;
  if (e && typeof e === 'object' && 'validation' in e && e.validation) {
    return { status: 400, body: { requestId, message: `Invalid request: ${e.message}` } };
  }
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return { status: 413, body: { requestId, message: `Request body too large: ${e.message}` } };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        body: { requestId, message: `Unsupported Content-Type; send application/json (or multipart/form-data for uploads)` },
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: { requestId, message: 'The JSON body is empty; send a JSON object' } };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, body: { requestId, message: 'Content-Length does not match the body' } };
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return { status: 415, body: { requestId, message: 'Upload with Content-Type multipart/form-data and a part named "file"' } };
  }
  if (e instanceof SyntaxError || e?.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return { status: 400, body: { requestId, message: 'The body is not valid JSON; send a JSON object' } };
  }
  const status = typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
  if (status < 500) return { status, body: { requestId, message: e.message } };
  return { status: 500, body: { requestId, message: 'Internal error; the server log has the details under this requestId' } };
}

export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body, retryAfter } = describeError(error, request.id);
  if (status >= 500 && status !== 502 && status !== 503 && status !== 504) request.log.error({ err: error }, 'request failed');
  else request.log.info({ status, message: body.message }, 'request refused');
  if (retryAfter !== undefined) reply.header('Retry-After', String(retryAfter));
  reply.status(status).type('application/json; charset=utf-8').send(body);
}
