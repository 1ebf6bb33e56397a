/**
 * What each route answers, for the OpenAPI document: a summary, the query parameters its
 * handler reads, the request body of routes whose schema does not say it, and the success
 * response. Keyed by `METHOD /path` under the API base, in Fastify's `:param` form.
 *
 * Route code stays free of documentation: transform.ts merges these entries into each route's
 * schema when the document is generated, and never at request time, so nothing here changes how
 * a request is validated or an answer serialised. A route may instead carry its own
 * `schema.response` (and `querystring`, `body`); it wins over an entry here.
 * test/api/openapi.test.ts fails for any served route that is documented neither way.
 */
import { ref } from './schemas.js';

export interface RouteDoc {
  summary: string;
  /** Query parameters the handler reads without a querystring schema. */
  query?: Record<string, object>;
  /** The request body, for routes whose schema has none (uploads, documented-only bodies). */
  body?: object;
  /** The success answer: a JSON schema, 'binary' for a byte stream, or 'empty' for no body. */
  response: object | 'binary' | 'empty';
  /** Status of the success answer; default 200. */
  status?: number;
}

const list = (item: object) => ({ type: 'array', items: item });
const bool = (description: string) => ({ type: 'boolean', description });
const str = (description: string) => ({ type: 'string', description });

const pathQuery = { path: str('The object, by path (/folder/file.txt); or name it by id in the URL') };
const overwrite = { overwrite: bool('Replace what is at the destination (default false: a 409)') };
const tags = { tags: { type: 'array', items: { type: 'string' }, description: 'Tags to set (tags[] is accepted too)' } };
const emptyTrash = { emptyTrash: bool('Accepted for compatibility; deletes are final') };
const elementTags = { tags: { type: 'array', items: { type: 'string' }, description: 'Only instances with these tags' } };

const uploadBody = {
  content: {
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['file'],
        properties: { file: { type: 'string', format: 'binary' }, tags: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
};

/** Documents-hub routes, by path; their `/:id` twins share the entry (see docFor). */
const HUB: Record<string, RouteDoc> = {
  'GET /hubs/documents/ping': { summary: 'Check that the backend answers', response: ref('Ping') },
  'GET /hubs/documents/storage': { summary: "The backend's capacity, where it knows it", response: ref('Storage') },
  'GET /hubs/documents/me': { summary: 'The backend account the instance acts as', response: ref('Account') },
  'POST /hubs/documents/files': {
    summary: 'Upload a file (multipart/form-data, part "file")',
    query: { ...pathQuery, ...overwrite, ...tags },
    body: uploadBody,
    response: ref('DocumentObject'),
  },
  'GET /hubs/documents/files': { summary: 'Download a file', query: pathQuery, response: 'binary' },
  'DELETE /hubs/documents/files': { summary: 'Delete a file', query: { ...pathQuery, ...emptyTrash }, response: 'empty' },
  'GET /hubs/documents/files/metadata': { summary: "A file's metadata", response: ref('DocumentObject') },
  'PATCH /hubs/documents/files/metadata': {
    summary: 'Rename, move or retag a file',
    query: { ...pathQuery, ...overwrite },
    response: ref('DocumentObject'),
  },
  'POST /hubs/documents/files/copy': { summary: 'Copy a file', query: { ...pathQuery, ...overwrite }, response: ref('DocumentObject') },
  'GET /hubs/documents/files/links': { summary: 'A signed download link to a file', query: pathQuery, response: ref('Link') },
  'GET /hubs/documents/files/revisions': { summary: "A file's revisions", query: pathQuery, response: list(ref('Revision')) },
  'GET /hubs/documents/files/revisions/:revisionId': { summary: 'One revision of a file', query: pathQuery, response: ref('Revision') },
  'POST /hubs/documents/folders': { summary: 'Create a folder', response: ref('DocumentObject') },
  'DELETE /hubs/documents/folders': { summary: 'Delete a folder and everything in it', query: { ...pathQuery, ...emptyTrash }, response: 'empty' },
  'GET /hubs/documents/folders/contents': { summary: "A folder's direct children, paged", response: list(ref('DocumentObject')) },
  'GET /hubs/documents/folders/metadata': { summary: "A folder's metadata", response: ref('DocumentObject') },
  'PATCH /hubs/documents/folders/metadata': {
    summary: 'Rename, move or retag a folder',
    query: { ...pathQuery, ...overwrite },
    response: ref('DocumentObject'),
  },
  'POST /hubs/documents/folders/copy': {
    summary: 'Copy a folder with everything in it',
    query: { ...pathQuery, ...overwrite },
    response: ref('DocumentObject'),
  },
  'GET /hubs/documents/folders/links': { summary: 'A signed link to a folder listing', query: pathQuery, response: ref('Link') },
  'GET /hubs/documents/search': { summary: 'Search by name under a folder, paged', response: list(ref('DocumentObject')) },
};

const INSTANCES: Record<string, RouteDoc> = {
  'POST /instances': { summary: 'Create an instance; the answer carries its token', response: ref('Instance') },
  'GET /instances': { summary: 'List instances', query: elementTags, response: list(ref('Instance')) },
  'GET /instances/:id': { summary: 'One instance', response: ref('Instance') },
  'PUT /instances/:id': { summary: 'Replace an instance', response: ref('Instance') },
  'PATCH /instances/:id': { summary: 'Update an instance', response: ref('Instance') },
  'DELETE /instances/:id': { summary: 'Delete an instance', response: 'empty' },
  'GET /instances/:id/configuration': { summary: "An instance's configuration entries", response: list(ref('ConfigurationEntry')) },
  'PATCH /instances/:id/configuration/:configId': { summary: 'Set one configuration entry', response: ref('ConfigurationEntry') },
  'PUT /instances/:id/enabled': { summary: 'Enable an instance', response: ref('Instance') },
  'DELETE /instances/:id/enabled': { summary: 'Disable an instance', response: ref('Instance') },
};

/** A bulk job's status (src/bulk/): Open Connectors' statuses and Ferry's counts and progress. */
const bulkStatus = {
  type: 'object',
  properties: {
    id: { type: 'integer', description: 'The bulk job id (its event id)' },
    kind: { type: 'string', enum: ['query', 'files'], description: 'query: an export; files: a batch' },
    status: { type: 'string', enum: ['CREATED', 'RUNNING', 'COMPLETED', 'ERROR', 'CANCELLATION_PENDING', 'CANCELLED'] },
    query: { type: 'string', description: "An export's CEQL query" },
    message: { type: 'string', description: 'Why the job ended in ERROR' },
    eventId: { type: 'integer', description: "The job's event (GET /instances/events/{id})" },
    recordsCount: { type: 'integer' },
    recordsFailedCount: { type: 'integer' },
    progress: { type: 'object', additionalProperties: true },
    createdDate: { type: 'string', format: 'date-time' },
    completedDate: { type: ['string', 'null'], format: 'date-time' },
  },
  additionalProperties: true,
};

/** Bulk jobs of the documents hub (src/bulk/). */
const BULK: Record<string, RouteDoc> = {
  'POST /hubs/documents/bulk/query': {
    summary: 'Start an export: every object the CEQL query q matches, streamed to a result file',
    query: { q: str("CEQL, e.g. select * from files where path like '/photos/%' and size > 1000") },
    response: { type: 'object', properties: { id: { type: 'integer' }, status: { type: 'string', enum: ['CREATED'] } } },
  },
  'POST /hubs/documents/bulk/files': {
    summary: 'Start a batch: one operation per manifest row (copy, move, delete, createFolder, setTags)',
    body: {
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            required: ['file'],
            properties: { file: { type: 'string', format: 'binary', description: 'CSV or NDJSON manifest' }, metaData: { type: 'string', description: 'JSON: {"continueOnError", "concurrency"}' } },
          },
        },
      },
    },
    response: {
      type: 'object',
      properties: { id: { type: 'integer' }, status: { type: 'string', enum: ['CREATED'] }, rowsTotal: { type: 'integer', description: 'The rows the manifest holds' } },
    },
  },
  'GET /hubs/documents/bulk/:id/status': { summary: "A bulk job's status and counts", response: bulkStatus },
  'GET /hubs/documents/bulk/:id/files': {
    summary: "An export's records: CSV (Accept: text/csv) or one JSON record per line (Accept: application/json)",
    response: {
      content: {
        'text/csv': { schema: { type: 'string' } },
        'application/json': { schema: ref('BulkRecord') },
      },
    },
  },
  'GET /hubs/documents/bulk/:id/errors': {
    summary: "A bulk job's failed rows, paged",
    response: list({
      type: 'object',
      properties: { row: { type: 'integer' }, operation: { type: 'string' }, path: { type: 'string' }, statusCode: { type: 'integer' }, message: { type: 'string' } },
    }),
  },
  'PUT /hubs/documents/bulk/:id/cancel': { summary: 'Cancel a bulk job (rows done stay done)', response: bulkStatus },
};

const PLATFORM: Record<string, RouteDoc> = {
  'PUT /notifications/subscriptions/deliveries/:notificationId': {
    summary: 'Redeliver one failed (retry) or queued notification now',
    response: { type: 'object', properties: { redelivered: { type: 'integer' } } },
  },
  'GET /elements': { summary: 'The elements (connectors)', response: list(ref('Element')) },
  'GET /elements/keys': { summary: 'The element keys', response: list({ type: 'string' }) },
  'GET /elements/:key': { summary: 'One element, by key or id', response: ref('Element') },
  'GET /elements/:key/metadata': { summary: "What a client needs to use an element", response: ref('ElementMetadata') },
  'GET /hubs': { summary: 'The hubs', response: list(ref('Hub')) },
  'GET /hubs/keys': { summary: 'The hub keys', response: list({ type: 'string' }) },
  'GET /hubs/:hub': { summary: 'One hub', response: ref('Hub') },
  'GET /hubs/:hub/elements': { summary: "A hub's elements", response: list(ref('Element')) },
  'GET /hubs/documents/objects': { summary: "The documents hub's objects", response: list({ type: 'string' }) },
  'GET /hubs/documents/objects/:name/metadata': { summary: "An object's fields", response: ref('HubObjectMetadata') },
  'GET /instances/events': { summary: 'Events of asynchronous requests, newest first, paged', response: list(ref('Event')) },
  'GET /instances/:id/events': { summary: "One instance's events, paged", response: list(ref('Event')) },
  'GET /instances/events/:eventId': { summary: 'One event with its execution and deliveries', response: ref('Event') },
  'GET /instances/:id/events/:eventId': { summary: 'One event of an instance', response: ref('Event') },
  'GET /instances/events/:eventId/result': { summary: 'The stored result of an asynchronous download', response: 'binary' },
  'GET /notifications/subscriptions/deliveries': { summary: 'Webhook deliveries, filtered by where', response: list(ref('Delivery')) },
  'PUT /notifications/subscriptions/deliveries': { summary: 'Redeliver the queued deliveries where selects', response: ref('Redelivered') },
  'GET /accounts/settings': { summary: "The account's settings", response: ref('Settings') },
  'PATCH /accounts/settings': { summary: "Change the account's settings", body: ref('Settings'), response: ref('Settings') },
  'GET /links/:token': {
    summary: 'Follow a signed link: the file, or the folder listing (JSON)',
    response: {
      content: {
        'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
        'application/json': { schema: list(ref('DocumentObject')) },
      },
    },
  },
};

const CATALOG: Record<string, RouteDoc> = { ...HUB, ...BULK, ...INSTANCES, ...PLATFORM };

/** Hub routes: every one may be sent asynchronously. */
export const HUB_PREFIX = '/hubs/documents/';

/**
 * The entry for a route (`url` relative to the API base), or undefined. By-id twins
 * (`/files/:id/copy`) share their by-path entry, and `/elements/:key/instances…` the
 * `/instances…` one.
 */
export function docFor(method: string, url: string): RouteDoc | undefined {
  const key = `${method} ${url}`;
  if (CATALOG[key]) return CATALOG[key];
  if (url.startsWith(HUB_PREFIX) && url.includes('/:id')) return CATALOG[`${method} ${url.replace('/:id', '')}`];
  if (url.startsWith('/elements/:key/instances')) return CATALOG[`${method} ${url.slice('/elements/:key'.length)}`];
  return undefined;
}
