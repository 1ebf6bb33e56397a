/**
 * `POST /hubs/documents/bulk/files` (issue 17): a multipart body with part `file` (the CSV or
 * NDJSON manifest) and optional field `metaData` (JSON options). An outside request's body is
 * spooled by the async intake as it arrives; the whole manifest is then read once from the
 * spool (manifest.ts) — a manifest that cannot be read is a 400 naming the line and nothing is
 * stored — and the request is accepted as a job, its options and format stored with it as
 * internal headers. The replay streams the manifest part again and runs the batch (batch.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import BusboyModule from '@fastify/busboy';
import type { Services } from '../http/app.js';
import type { DocumentsService } from '../documents/service.js';
import { describeError } from '../http/errors.js';
import { invalid } from '../errors.js';
import { manifestRows, parseOptions, type BatchOptions, type ManifestFormat } from './manifest.js';
import { runBatch } from './batch.js';
import type { BulkResults, BulkState } from './results.js';
import type { BulkKind, BulkSummary } from './outcome.js';

/** Internal headers stored with a batch job (set at accept; an outside value is replaced). */
const OPTIONS_HEADER = 'x-ferry-bulk-options';
const FORMAT_HEADER = 'x-ferry-bulk-format';

const NO_MANIFEST = 'Send the manifest as multipart/form-data with a part named "file" (CSV with a header row, or NDJSON), and optionally a field "metaData" such as {"continueOnError": true, "concurrency": 4}';

export interface BatchRouteDeps {
  services: Services;
  results: BulkResults;
  /** The results' sealing key, derived on first use. */
  key: () => Buffer;
  accept(request: FastifyRequest, reply: FastifyReply): Promise<unknown>;
  runJob(request: FastifyRequest, reply: FastifyReply, kind: BulkKind, work: () => Promise<BulkState>, extra: Partial<BulkSummary>): Promise<unknown>;
  docs(request: FastifyRequest): DocumentsService;
}

export async function batchRoutes(app: FastifyInstance, deps: BatchRouteDeps): Promise<void> {
  const { services, results, key } = deps;
  const { config } = services;
  const limits = { maxRows: config.bulkMaxRows, maxBytes: config.bulkMaxBytes };

  app.post('/hubs/documents/bulk/files', { schema: { summary: 'Start a batch: one operation per manifest row (copy, move, delete, createFolder, setTags)' } }, async (request, reply) => {
    if (!request.internal) {
      const spool = request.asyncSpool;
      if (!spool || !services.intake) throw invalid(NO_MANIFEST);
      const { options, format, rows } = await checkManifest(await services.intake.spool.open(spool), request.headers as Record<string, string>, limits);
      request.headers[OPTIONS_HEADER] = JSON.stringify(options);
      request.headers[FORMAT_HEADER] = format;
      const answer = (await deps.accept(request, reply)) as Record<string, unknown>;
      return { ...answer, rowsTotal: rows };
    }
    const eventId = request.job!.eventId!;
    const options = parseOptions(String(request.headers[OPTIONS_HEADER] ?? ''));
    const format = request.headers[FORMAT_HEADER] === 'ndjson' ? 'ndjson' : 'csv';
    const service = deps.docs(request);
    return deps.runJob(
      request,
      reply,
      'files',
      async () => {
        for await (const part of request.parts()) {
          if (part.type !== 'file' || part.fieldname !== 'file') continue;
          const rows = manifestRows(part.file, format, limits);
          const state = await runBatch({
            eventId,
            rows,
            options,
            service,
            results,
            key: key(),
            job: request.job!,
            maxPathLength: config.maxPathLength,
            describe: (e) => {
              const { status, body } = describeError(e, request.id);
              return { statusCode: status, message: body.message };
            },
          });
          part.file.resume();
          return state;
        }
        throw invalid(NO_MANIFEST);
      },
      {},
    );
  });
}

/** Reads a spooled multipart body: the options, the manifest's format and its row count. */
async function checkManifest(
  body: Readable,
  headers: Record<string, string>,
  limits: { maxRows: number; maxBytes: number },
): Promise<{ options: BatchOptions; format: ManifestFormat; rows: number }> {
  const Busboy = (BusboyModule as any).default ?? BusboyModule;
  return new Promise((resolve, reject) => {
    let metaData: string | undefined;
    let counted: Promise<{ format: ManifestFormat; rows: number }> | null = null;
    let bb: any;
    try {
      bb = new Busboy({ headers, limits: { files: 1, fields: 20, fieldSize: 64 * 1024 } });
    } catch {
      reject(invalid(NO_MANIFEST));
      return;
    }
    bb.on('field', (name: string, value: string) => {
      if (name === 'metaData') metaData = value;
    });
    bb.on('file', (name: string, stream: Readable, filename: string, _enc: string, mimeType: string) => {
      if (name !== 'file' || counted) {
        stream.resume();
        return;
      }
      counted = (async () => {
        let format: ManifestFormat = 'csv';
        let rows = 0;
        try {
          for await (const _ of manifestRows(stream, { mimeType, filename, found: (f) => (format = f) }, limits)) rows++;
        } finally {
          stream.resume();
        }
        return { format, rows };
      })();
      counted.catch(() => stream.resume());
    });
    bb.on('error', () => reject(invalid(NO_MANIFEST)));
    bb.on('finish', () => {
      if (!counted) return reject(invalid(NO_MANIFEST));
      counted.then((c) => {
        try {
          resolve({ options: parseOptions(metaData), ...c });
        } catch (e) {
          reject(e);
        }
      }, reject);
    });
    body.on('error', reject);
    body.pipe(bb);
  });
}
