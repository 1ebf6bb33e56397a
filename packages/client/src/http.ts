/**
 * The transport: one `fetch` per call against `<baseUrl>/elements/api-v2`, with the
 * Authorization header, query parameters, JSON bodies, and any non-2xx answer turned into a
 * FerryError carrying Ferry's error body.
 */
import { FerryError } from './errors.js';

export const API_BASE = '/elements/api-v2';

/** What a request may carry; named here because Node's types have no BodyInit. */
export type RequestBody = FormData | Blob | string | ReadableStream<Uint8Array>;

export type Query = Record<string, string | number | boolean | readonly string[] | undefined | null>;

export interface CallOptions {
  query?: Query;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (multipart uploads). */
  body?: RequestBody;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface Transport {
  baseUrl: string;
  fetch: typeof fetch;
}

function url(transport: Transport, path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const v of value) params.append(key, String(v));
    else params.append(key, String(value));
  }
  const search = params.toString();
  return `${transport.baseUrl.replace(/\/+$/, '')}${API_BASE}${path}${search ? `?${search}` : ''}`;
}

/** The FerryError for a non-2xx answer. */
async function errorOf(res: Response): Promise<FerryError> {
  const headerId = res.headers.get('elements-request-id');
  let body: { requestId?: string; message?: string; providerMessage?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not Ferry's error body (a proxy's page): status and request id still say enough
  }
  return new FerryError(
    res.status,
    body.message ?? `HTTP ${res.status} ${res.statusText}`,
    body.requestId ?? headerId,
    body.providerMessage ?? null,
  );
}

/** Sends a request; resolves with the 2xx Response, or throws a FerryError. */
export async function call(transport: Transport, authorization: string, method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization, ...options.headers };
  let body: RequestBody | undefined = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const init: RequestInit & { duplex?: 'half' } = { method, headers, body: body as RequestInit['body'], signal: options.signal };
  // A streamed request body (an upload from a stream) needs half-duplex in Node's fetch.
  if (body && typeof (body as ReadableStream).getReader === 'function') init.duplex = 'half';
  let res: Response;
  try {
    res = await transport.fetch(url(transport, path, options.query), init);
  } catch (e) {
    throw new FerryError(0, `No answer from Ferry at ${transport.baseUrl}: ${(e as Error)?.message ?? e}`, null, null, { cause: e });
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

/** Sends a request and parses the JSON answer. */
export async function callJson<T>(transport: Transport, authorization: string, method: string, path: string, options: CallOptions = {}): Promise<T> {
  const res = await call(transport, authorization, method, path, options);
  const text = await res.text();
  return (text === '' ? undefined : JSON.parse(text)) as T;
}
