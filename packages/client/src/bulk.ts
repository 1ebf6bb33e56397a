/**
 * Bulk jobs of an instance's documents hub (`hub.bulk`): an export of every object a CEQL query
 * matches, and a batch that runs one operation per manifest row. Both run as asynchronous
 * events on the server (the job id is the event id): `query` and `files` answer at once, then
 * `wait` (or the notification, when a callback URL is given) tells when the job has ended, and
 * `records` / `errors` read what it left.
 */
import { FerryError } from './errors.js';
import { call, callJson, type Transport } from './http.js';
import { uploadBody, type UploadSource } from './upload.js';
import type { Answer, Page, components } from './types.js';

const B = '/hubs/documents/bulk';

export type BulkStatus = Answer<'/elements/api-v2/hubs/documents/bulk/{id}/status', 'get'>;
export type BulkStarted = Answer<'/elements/api-v2/hubs/documents/bulk/query', 'post'>;
export type BatchStarted = Answer<'/elements/api-v2/hubs/documents/bulk/files', 'post'>;
export type BulkErrorRow = Answer<'/elements/api-v2/hubs/documents/bulk/{id}/errors', 'get'>[number];

/** The statuses after which a bulk job changes no more. */
export const BULK_FINAL_STATUSES: readonly string[] = ['COMPLETED', 'ERROR', 'CANCELLED'];

/** One batch row, as `files()` takes it when given rows instead of a manifest file. */
export interface BulkRow {
  operation: 'copy' | 'move' | 'delete' | 'createFolder' | 'setTags';
  path: string;
  /** Where a copy or move goes. */
  to?: string;
  overwrite?: boolean;
  tags?: string[];
}

/** An export's record (a line of `GET /bulk/{id}/files` as NDJSON). */
export type BulkRecord = components['schemas']['BulkRecord'];

export interface BulkStartOptions {
  /** Where the job's notification goes; default the instance's event.notification.callback.url (none: the job is polled). */
  callbackUrl?: string;
  /** Repeating a start with the same key returns the same job instead of a second one. */
  idempotencyKey?: string;
}

export interface BatchOptions extends BulkStartOptions {
  /** Go on after a failed row (default true); false stops the batch at its first failure. */
  continueOnError?: boolean;
  /** Rows run at once, 1–32 (default 4). */
  concurrency?: number;
  /** The manifest's format when it is given as bytes or a stream; default: the server tells by its first character. */
  format?: 'csv' | 'ndjson';
}

export interface BulkWaitOptions {
  /** Give up after this long (a FerryError with status 0); default 10 minutes. */
  timeoutMs?: number;
  /** Time between polls; default 500 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class BulkClient {
  constructor(
    private readonly transport: Transport,
    private readonly authorization: string,
  ) {}

  private startHeaders(options: BulkStartOptions): Record<string, string> {
    const headers: Record<string, string> = {};
    if (options.callbackUrl) headers['elements-async-callback-url'] = options.callbackUrl;
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    return headers;
  }

  private id(id: number | string): string {
    return encodeURIComponent(String(id));
  }

  /** Starts an export of every object the CEQL query matches, e.g. `select * from files where path like '/photos/%'`. */
  query(q: string, options: BulkStartOptions = {}): Promise<BulkStarted> {
    return callJson(this.transport, this.authorization, 'POST', `${B}/query`, { query: { q }, headers: this.startHeaders(options) });
  }

  /**
   * Starts a batch: `manifest` is either the rows themselves (sent as NDJSON) or a manifest
   * file's bytes or stream (CSV with a header row, or NDJSON). Answers with the job id and the
   * number of rows the server read.
   */
  files(manifest: readonly BulkRow[] | UploadSource, options: BatchOptions = {}): Promise<BatchStarted> {
    const rows = Array.isArray(manifest);
    const format = rows ? 'ndjson' : options.format;
    const source = rows ? new TextEncoder().encode((manifest as readonly BulkRow[]).map((row) => `${JSON.stringify(row)}\n`).join('')) : (manifest as UploadSource);
    const fields: Record<string, string> = {};
    if (options.continueOnError !== undefined || options.concurrency !== undefined) {
      fields.metaData = JSON.stringify({ continueOnError: options.continueOnError, concurrency: options.concurrency });
    }
    const { body, contentType } = uploadBody(
      source,
      format ? `manifest.${format}` : 'manifest',
      format === 'csv' ? 'text/csv' : format === 'ndjson' ? 'application/x-ndjson' : undefined,
      fields,
    );
    const headers = this.startHeaders(options);
    if (contentType) headers['content-type'] = contentType;
    return callJson(this.transport, this.authorization, 'POST', `${B}/files`, { body, headers });
  }

  status(id: number | string): Promise<BulkStatus> {
    return callJson(this.transport, this.authorization, 'GET', `${B}/${this.id(id)}/status`);
  }

  /** Asks the job to stop at its next batch; rows done stay done. Answers the status (CANCELLATION_PENDING, then CANCELLED). */
  cancel(id: number | string): Promise<BulkStatus> {
    return callJson(this.transport, this.authorization, 'PUT', `${B}/${this.id(id)}/cancel`);
  }

  /** Polls the job's status until it is COMPLETED, ERROR or CANCELLED; resolves with that status. */
  async wait(id: number | string, options: BulkWaitOptions = {}): Promise<BulkStatus> {
    const timeoutMs = options.timeoutMs ?? 600_000;
    const interval = options.intervalMs ?? 500;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      options.signal?.throwIfAborted();
      const status = await this.status(id);
      if (BULK_FINAL_STATUSES.includes(String(status.status))) return status;
      if (Date.now() + interval > deadline) throw new FerryError(0, `Bulk job ${id} is still ${status.status} after ${timeoutMs} ms`);
      await sleep(interval);
    }
  }

  /** A completed export's records, one object at a time (streamed, never held whole). */
  async *records(id: number | string): AsyncGenerator<BulkRecord> {
    const res = await call(this.transport, this.authorization, 'GET', `${B}/${this.id(id)}/files`, { headers: { accept: 'application/json' } });
    if (!res.body) return;
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    let rest = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        rest += done ? decoder.decode() : decoder.decode(value, { stream: true });
        const lines = rest.split('\n');
        rest = done ? '' : (lines.pop() ?? '');
        for (const line of lines) if (line.trim() !== '') yield JSON.parse(line) as BulkRecord;
        if (done) return;
      }
    } finally {
      reader.releaseLock();
      await res.body.cancel().catch(() => {});
    }
  }

  /** A completed export's records as CSV with a header row, as a web ReadableStream. */
  async recordsCsv(id: number | string): Promise<ReadableStream<Uint8Array>> {
    const res = await call(this.transport, this.authorization, 'GET', `${B}/${this.id(id)}/files`, { headers: { accept: 'text/csv' } });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** One page of a batch's failed rows. */
  async errors(id: number | string, options: { pageSize?: number; nextPage?: string } = {}): Promise<Page<BulkErrorRow>> {
    const res = await call(this.transport, this.authorization, 'GET', `${B}/${this.id(id)}/errors`, { query: options });
    return { items: (await res.json()) as BulkErrorRow[], nextPage: res.headers.get('elements-next-page-token'), total: null };
  }
}
