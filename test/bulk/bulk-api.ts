/**
 * Test helpers for the bulk API (issue 17): start an export or a batch, poll its status, read
 * its records (CSV parsed with csv-parse, NDJSON) and its paged errors.
 */
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';

export interface BulkApi {
  /** http://127.0.0.1:PORT/elements/api-v2 */
  base: string;
  hubAuth: string;
  /** Sent as Elements-Async-Callback-Url when set. */
  callbackUrl?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function headers(api: BulkApi, extra: Record<string, string> = {}): Headers {
  const h = new Headers({ authorization: api.hubAuth, ...extra });
  if (api.callbackUrl) h.set('elements-async-callback-url', api.callbackUrl);
  return h;
}

export async function postQuery(api: BulkApi, q: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api.base}/hubs/documents/bulk/query?q=${encodeURIComponent(q)}`, { method: 'POST', headers: headers(api) });
  return { status: res.status, body: await res.json() };
}

export async function startExport(api: BulkApi, q: string): Promise<number> {
  const { status, body } = await postQuery(api, q);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.status, 'CREATED');
  return body.id;
}

export async function postBatch(
  api: BulkApi,
  manifest: string | Buffer,
  options: { filename?: string; type?: string; metaData?: unknown } = {},
): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('file', new Blob([typeof manifest === 'string' ? manifest : new Uint8Array(manifest)], { type: options.type ?? '' }), options.filename ?? 'manifest');
  if (options.metaData !== undefined) form.append('metaData', JSON.stringify(options.metaData));
  const res = await fetch(`${api.base}/hubs/documents/bulk/files`, { method: 'POST', headers: headers(api), body: form });
  return { status: res.status, body: await res.json() };
}

export async function startBatch(api: BulkApi, manifest: string, options: { filename?: string; metaData?: unknown } = {}): Promise<number> {
  const { status, body } = await postBatch(api, manifest, options);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.status, 'CREATED');
  return body.id;
}

export async function bulkStatus(api: BulkApi, id: number): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api.base}/hubs/documents/bulk/${id}/status`, { headers: headers(api) });
  return { status: res.status, body: await res.json() };
}

/** Polls the status until `done` holds (or one of the final statuses, by default). */
export async function waitBulk(api: BulkApi, id: number, done: (s: any) => boolean = (s) => ['COMPLETED', 'ERROR', 'CANCELLED'].includes(s.status), timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await bulkStatus(api, id);
    assert.equal(status, 200, JSON.stringify(body));
    if (done(body)) return body;
    if (Date.now() > until) throw new Error(`bulk job ${id} did not get there in time; last: ${JSON.stringify(body)}`);
    await sleep(50);
  }
}

export async function bulkFiles(api: BulkApi, id: number, accept: string): Promise<Response> {
  return fetch(`${api.base}/hubs/documents/bulk/${id}/files`, { headers: headers(api, { accept }) });
}

/** The export's records as CSV, parsed by csv-parse: header row and records. */
export async function csvRecords(api: BulkApi, id: number): Promise<{ header: string[]; rows: Record<string, string>[]; contentType: string }> {
  const res = await bulkFiles(api, id, 'text/csv');
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const all: string[][] = parse(text);
  const header = all[0];
  const rows = all.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
  return { header, rows, contentType: String(res.headers.get('content-type')) };
}

/** The export's records as NDJSON, one JSON object per line. */
export async function jsonRecords(api: BulkApi, id: number): Promise<{ rows: any[]; contentType: string }> {
  const res = await bulkFiles(api, id, 'application/json');
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return { rows: text.split('\n').filter(Boolean).map((l) => JSON.parse(l)), contentType: String(res.headers.get('content-type')) };
}

/** One page of a batch's errors. */
export async function errorsPage(api: BulkApi, id: number, query = ''): Promise<{ status: number; body: any; count: string | null; next: string | null }> {
  const res = await fetch(`${api.base}/hubs/documents/bulk/${id}/errors${query}`, { headers: headers(api) });
  return { status: res.status, body: await res.json(), count: res.headers.get('elements-returned-count'), next: res.headers.get('elements-next-page-token') };
}

export async function cancelBulk(api: BulkApi, id: number): Promise<{ status: number; body: any }> {
  const res = await fetch(`${api.base}/hubs/documents/bulk/${id}/cancel`, { method: 'PUT', headers: headers(api) });
  return { status: res.status, body: await res.json() };
}
