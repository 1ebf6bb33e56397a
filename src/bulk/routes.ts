/**
 * The bulk API of the documents hub (issue 17), under `/hubs/documents/bulk`, with hub auth:
 *
 * - `POST /bulk/query?q=<CEQL>` starts an export, `POST /bulk/files` (multipart manifest) a
 *   batch. Both are async events whatever the headers say: the request is validated, stored by
 *   the async intake (accept.ts) and answered `{id, status: "CREATED"}` with id = the event id;
 *   the runner replays it later through this same route (the replay carries the job context:
 *   signal, progress, journal), which runs the job and answers its summary (outcome.ts). The
 *   webhook, its signing, retries, queue policy and the events and deliveries APIs are those of
 *   every async event. Without a callback URL (header or instance) the job runs and is polled.
 * - `GET /bulk/{id}/status`, `GET /bulk/{id}/files` (CSV or NDJSON, streamed),
 *   `GET /bulk/{id}/errors` (paged), `PUT /bulk/{id}/cancel`.
 *
 * Only this file knows HTTP; the jobs (export.ts, batch.ts) know the documents service.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ASYNC_HEADER } from '../async/accept.js';
import { cancelEvent } from '../async/cancel.js';
import { presentProgress } from '../async/progress.js';
import { DocumentsService } from '../documents/service.js';
import { SYNC_JOB } from '../documents/job.js';
import { invalid, isFerryError, notFound, unavailable } from '../errors.js';
import type { EventRecord } from '../store/async.js';
import { describeError } from '../http/errors.js';
import { hubAuth, identityOf, pageHeaders, type PluginOptions } from '../http/routes/common.js';
import { BULK_STATUS, bulkKindOf, type BulkKind, type BulkSummary } from './outcome.js';
import { parseExportQuery } from './query.js';
import { runExport } from './export.js';
import { BulkResults, RESULT_KEY_LABEL, type BulkState } from './results.js';
import { sealedLines } from './sealed-file.js';
import { csvStream, ndjsonStream } from './records.js';
import { batchRoutes } from './batch-routes.js';

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 20 } }, required: ['id'] } as const;

export async function bulkRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  const { config, store } = services;
  const results = new BulkResults(config.bulkDir);
  // Derived when first needed (a job or a read), not at registration: building the app for its
  // OpenAPI document alone (http/openapi/document.ts) has no master key.
  let resultKeys: Buffer[] | undefined;
  /** Every key a result may be sealed with (a rotation may be under way); the first seals. */
  const keys = () => (resultKeys ??= services.instances.derivedKeys(RESULT_KEY_LABEL));
  const key = () => keys()[0];

  app.addHook('onRequest', hubAuth(services));
  if (services.intake) {
    const intake = services.intake;
    // A job's request is always stored: an upload manifest goes to the spool as it arrives.
    app.addHook('onRequest', async (request) => {
      if (!request.internal && request.method === 'POST') request.headers[ASYNC_HEADER] = 'true';
    });
    app.addHook('preParsing', (request, _reply, payload) => intake.capture(request, payload));
    app.addHook('onSend', async (request) => intake.release(request));
    app.addHook('onResponse', (request) => intake.release(request));
  }
  const sweep = setInterval(() => results.sweepExpired(config.resultRetentionMs), Math.min(60_000, Math.max(1000, config.resultRetentionMs / 10)));
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));

  /** The documents service a replayed job runs with: its instance, its job context. */
  function docs(request: FastifyRequest): DocumentsService {
    const instance = identityOf(request).instance;
    if (!instance) throw new Error('hub route without instance');
    return new DocumentsService(services.instances.element(instance), instance.id, store, false, request.job ?? SYNC_JOB);
  }

  /** Stores an outside request as the job's event; answers `{id, status: "CREATED"}`. */
  async function accept(request: FastifyRequest, reply: FastifyReply) {
    if (!services.intake) throw unavailable('This node does not accept jobs (FERRY_ROLE=worker); send bulk requests to an API node');
    const accepted = await services.intake.accept(request, { polled: true });
    reply.header('Location', `/elements/api-v2/hubs/documents/bulk/${accepted.eventId}/status`);
    return { id: accepted.eventId, status: 'CREATED' };
  }

  /**
   * Runs a replayed job's body; answers its summary: 200 completed, 409 stopped by a cancel. A
   * failure answers the usual error body (the event's outcome marks it ERROR).
   */
  async function runJob(request: FastifyRequest, reply: FastifyReply, kind: BulkKind, work: () => Promise<BulkState>, extra: Partial<BulkSummary>) {
    const eventId = request.job?.eventId;
    if (eventId === undefined) throw new Error('bulk job replayed without its job context');
    const finish = (state: BulkState) => results.write(eventId, { ...state, finishedAt: Date.now() });
    try {
      const state = await work();
      finish(state);
      return summary(eventId, kind, 'COMPLETED', state, extra);
    } catch (e) {
      const state = results.read(eventId);
      if (state) finish(state);
      if (isFerryError(e, 'cancelled') || request.job?.signal.aborted) {
        return reply.status(409).send(summary(eventId, kind, 'CANCELLED', state, extra));
      }
      const { status, body } = describeError(e, request.id);
      if (status >= 500) request.log.error({ err: e, eventId }, 'bulk job failed');
      return reply.status(status).send({ ...summary(eventId, kind, 'ERROR', state, extra), message: body.message, providerMessage: body.providerMessage });
    }
  }

  app.post<{ Querystring: { q?: string } }>(
    '/hubs/documents/bulk/query',
    {
      schema: {
        summary: 'Start an export: every object matching a CEQL query, as one result file',
        querystring: { type: 'object', properties: { q: { type: 'string', maxLength: 2100 } } },
      },
    },
    async (request, reply) => {
      const q = request.query.q;
      if (!q) throw invalid("The q query parameter is required, e.g. ?q=select * from files where path like '/photos/%'");
      const query = parseExportQuery(q);
      if (!request.internal) return accept(request, reply);
      const eventId = request.job!.eventId!;
      return runJob(request, reply, 'query', () => runExport({ eventId, query, service: docs(request), results, key: key(), job: request.job! }), { query: q });
    },
  );

  await batchRoutes(app, { services, results, key, accept, runJob, docs });

  /** The caller's instance's bulk job `raw`, or 404. */
  async function bulkEvent(request: FastifyRequest, raw: string): Promise<{ event: EventRecord; kind: BulkKind }> {
    const identity = identityOf(request);
    const missing = () => notFound(`No bulk job ${String(raw).slice(0, 20)} for this instance; the id is the one POST /bulk/query or POST /bulk/files answered`);
    if (!/^\d{1,15}$/.test(raw)) throw missing();
    const event = await store.getEvent(identity.organizationId, Number(raw));
    const kind = event ? bulkKindOf(event.method, event.url) : null;
    if (!event || !kind || event.instanceId !== identity.instance?.id) throw missing();
    return { event, kind };
  }

  function statusOf(event: EventRecord, kind: BulkKind) {
    const state = results.read(event.id);
    const s = summary(event.id, kind, BULK_STATUS[event.execution], state, {});
    const response = (event.response ?? {}) as Record<string, unknown>;
    return {
      ...s,
      ...(typeof response.message === 'string' && s.status === 'ERROR' ? { message: response.message } : {}),
      progress: presentProgress(event.progress, event.execution),
      createdDate: event.createdDate.toISOString(),
      completedDate: event.finishedDate ? event.finishedDate.toISOString() : null,
      eventId: event.id,
    };
  }

  app.get<{ Params: { id: string } }>('/hubs/documents/bulk/:id/status', { schema: { summary: "A bulk job's status and counts", params: idParams } }, async (request) => {
    const { event, kind } = await bulkEvent(request, request.params.id);
    return statusOf(event, kind);
  });

  /** The job's finished results, or a 404 saying why not (its status, or expired). */
  async function finishedResults(request: FastifyRequest, raw: string, want: 'records' | 'errors') {
    const { event, kind } = await bulkEvent(request, raw);
    const status = BULK_STATUS[event.execution];
    const finished = ['COMPLETED', 'CANCELLED', 'ERROR'].includes(status);
    if (want === 'records' && status !== 'COMPLETED') {
      throw notFound(`Bulk job ${event.id} has no result yet: its status is ${status}; results are readable once it is COMPLETED (poll GET /bulk/${event.id}/status)`);
    }
    if (want === 'errors' && !finished && kind === 'query') {
      throw notFound(`Bulk job ${event.id} is an export; exports have no error rows (its status is ${status})`);
    }
    const state = results.read(event.id);
    const expired = state?.expired || (state?.finishedAt !== undefined && state.finishedAt + config.resultRetentionMs <= Date.now());
    if (expired) {
      results.sweepExpired(config.resultRetentionMs);
      throw notFound(`The results of bulk job ${event.id} expired (they are kept FERRY_RESULT_RETENTION = ${Math.round(config.resultRetentionMs / 1000)} s after the job ends); run the job again`);
    }
    return { event, kind, state };
  }

  app.get<{ Params: { id: string } }>('/hubs/documents/bulk/:id/files', { schema: { summary: "An export's records: CSV (Accept: text/csv) or NDJSON (Accept: application/json)", params: idParams } }, async (request, reply) => {
    const { event, kind } = await finishedResults(request, request.params.id, 'records');
    if (kind !== 'query') throw notFound(`Bulk job ${event.id} is a batch; its outcome is GET /bulk/${event.id}/status and /errors, it has no records file`);
    const accept = String(request.headers.accept ?? '');
    const lines = results.exists(results.recordsFile(event.id)) ? sealedLines(results.recordsFile(event.id), keys()) : emptyLines();
    if (/text\/csv/i.test(accept)) {
      return reply
        .header('Content-Type', 'text/csv; charset=utf-8')
        .header('Content-Disposition', `attachment; filename="bulk-${event.id}.csv"`)
        .send(csvStream(lines));
    }
    return reply.header('Content-Type', 'application/json; charset=utf-8').send(ndjsonStream(lines));
  });

  app.get<{ Params: { id: string }; Querystring: { pageSize?: number; nextPage?: string } }>(
    '/hubs/documents/bulk/:id/errors',
    {
      schema: {
        summary: "A batch's failed rows, paged",
        params: idParams,
        querystring: {
          type: 'object',
          properties: { pageSize: { type: 'integer', minimum: 1, maximum: 500, default: 200 }, nextPage: { type: 'string', maxLength: 64 } },
        },
      },
    },
    async (request, reply) => {
      const { event } = await finishedResults(request, request.params.id, 'errors');
      const pageSize = request.query.pageSize ?? 200;
      let skip = 0;
      if (request.query.nextPage) {
        const n = Number(Buffer.from(request.query.nextPage, 'base64url').toString('utf8'));
        if (!Number.isSafeInteger(n) || n < 0) throw invalid('nextPage is not a token this API gave; pass Elements-Next-Page-Token as it came');
        skip = n;
      }
      const page: unknown[] = [];
      let more = false;
      const file = results.errorsFile(event.id);
      if (results.exists(file)) {
        let index = 0;
        for await (const line of sealedLines(file, keys())) {
          if (index++ < skip) continue;
          if (page.length === pageSize) {
            more = true;
            break;
          }
          page.push(JSON.parse(line));
        }
      }
      pageHeaders(reply, page.length, more ? Buffer.from(String(skip + page.length)).toString('base64url') : null);
      return page;
    },
  );

  app.put<{ Params: { id: string } }>('/hubs/documents/bulk/:id/cancel', { schema: { summary: 'Cancel a bulk job', params: idParams } }, async (request) => {
    const { event: found, kind } = await bulkEvent(request, request.params.id);
    const event = await cancelEvent(store, identityOf(request).organizationId, found.id, found.instanceId, {
      local: services.cancelJob,
      wakeSender: services.wakeSender,
      spool: services.intake?.spool,
    });
    return statusOf(event, kind);
  });
}

/** A job's summary from its state (null: nothing written yet). */
export function summary(id: number, kind: BulkKind, status: BulkSummary['status'], state: BulkState | null, extra: Partial<BulkSummary>): BulkSummary {
  return {
    id,
    kind,
    status,
    recordsCount: state?.recordsCount ?? 0,
    recordsFailedCount: state?.recordsFailedCount ?? 0,
    ...extra,
  };
}

async function* emptyLines(): AsyncGenerator<string> {}
