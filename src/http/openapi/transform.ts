/**
 * Completes each route's schema for the OpenAPI document (the `transform` of @fastify/swagger,
 * run when the document is generated, never per request): the route's documentation entry
 * (routes.ts) supplies summary, query parameters, body and success response where the route's
 * own schema has none; every route gets the error body for 4XX and 5XX; hub routes get the
 * asynchronous-request headers. Routes that are not part of the API are hidden here, each named.
 */
import { docFor, HUB_PREFIX, type RouteDoc } from './routes.js';
import { ref } from './schemas.js';

/**
 * Served but not API routes, so not in the document: exact URLs or prefixes (ending in `*`).
 */
export const UNDOCUMENTED_ROUTES: readonly string[] = [
  '*', // the CORS preflight answer (OPTIONS on any path)
  '/elements/api-v2/docs*', // the OpenAPI document and its UI (@fastify/swagger-ui); API_BASE + /docs
  '/console*', // the web console's static files, when present
  '/healthz', // liveness probe
  '/readyz', // readiness probe
  '/metrics', // Prometheus scrape endpoint
];

export function isUndocumented(url: string): boolean {
  return UNDOCUMENTED_ROUTES.some((entry) => (entry.endsWith('*') && entry !== '*' ? url.startsWith(entry.slice(0, -1)) : url === entry));
}

/** app.ts imports this module, so its API_BASE is not yet defined when this one loads. */
const API_BASE = '/elements/api-v2';

const ERROR_RESPONSE = { description: 'Error: {requestId, message, providerMessage?}', ...ref('ErrorBody') };

const ASYNC_HEADERS = {
  type: 'object',
  properties: {
    'Elements-Async-Request': {
      type: 'string',
      enum: ['true', 'false'],
      description: 'true: run the request later and answer at once with {eventId, eventStatus: "dispatched"}',
    },
    'Elements-Async-Callback-Url': { type: 'string', description: "Where the notification goes (default: the instance's event.notification.callback.url)" },
    'Idempotency-Key': { type: 'string', description: 'Repeating an async request with the same key returns the same event' },
  },
} as const;

function successResponse(doc: RouteDoc): Record<string, object> {
  const status = String(doc.status ?? 200);
  if (doc.response === 'binary') {
    return { [status]: { description: 'The bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } };
  }
  if (doc.response === 'empty') return { [status]: { description: 'Done; no body', type: 'null' } };
  if ('content' in doc.response) return { [status]: { description: doc.summary, ...doc.response } };
  return { [status]: { description: doc.summary, ...doc.response } };
}

function hasSuccess(response: Record<string, unknown> | undefined): boolean {
  return Boolean(response && Object.keys(response).some((code) => /^2/.test(code)));
}

/** The @fastify/swagger transform. */
export function documentRoute({ schema, url, route }: { schema: any; url: string; route: { method: string | string[] } }) {
  if (isUndocumented(url)) return { schema: { ...schema, hide: true }, url };
  const method = Array.isArray(route.method) ? route.method[0] : route.method;
  const relative = url.startsWith(API_BASE) ? url.slice(API_BASE.length) : url;
  const doc = docFor(method, relative);
  const out: Record<string, any> = { ...schema };
  if (doc) {
    out.summary ??= doc.summary;
    if (doc.query && !schema?.querystring) out.querystring = { type: 'object', properties: doc.query };
    if (doc.body && !schema?.body) out.body = doc.body;
  }
  const response: Record<string, object> = { ...(schema?.response ?? {}) };
  if (!hasSuccess(response) && doc) Object.assign(response, successResponse(doc));
  response['4XX'] ??= ERROR_RESPONSE;
  response['5XX'] ??= ERROR_RESPONSE;
  out.response = response;
  if (relative.startsWith(HUB_PREFIX) && !relative.startsWith(`${HUB_PREFIX}objects`) && !schema?.headers) out.headers = ASYNC_HEADERS;
  // A signed link is its own credential: no Authorization header.
  if (relative.startsWith('/links/')) out.security = [];
  if (!out.tags) out.tags = [relative.startsWith('/hubs/documents') ? 'documents' : relative.startsWith('/instances') && relative.includes('events') ? 'events' : 'platform'];
  return { schema: out, url };
}
