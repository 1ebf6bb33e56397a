/**
 * What a bulk job (issue 17) answers and how it ends, as an async event: the bulk statuses of
 * Open Connectors mapped from the event's execution state (as data), the job's summary, and its
 * outcome and webhook body. A bulk job's replay answers its summary as JSON — 200 when it
 * completed, 409 when a cancel stopped it, an error body when it failed — and this module turns
 * that answer into the event's outcome: the summary is the event's `response`, and the webhook
 * carries the summary's fields at its top level beside the usual event fields. A job cancelled
 * before any runner took it never answers; its outcome is built here from the stored request
 * (`bulkCancelledBeforeStart`), so its webhook has the same shape.
 *
 * Imports only types from the store and the async machinery's progress/cancel helpers.
 */
import type { CapturedRequest, ClaimedJob, EventRecord, ExecutionState, JobOutcome } from '../store/async.js';
import type { StoredProgress } from '../async/progress.js';
import { presentProgress } from '../async/progress.js';
import { POLLED_HEADER } from '../async/accept.js';

/** Open Connectors' bulk job statuses. */
export type BulkStatus = 'CREATED' | 'RUNNING' | 'COMPLETED' | 'ERROR' | 'CANCELLATION_PENDING' | 'CANCELLED';

/** The bulk status of each execution state of the job's event. */
export const BULK_STATUS: Readonly<Record<ExecutionState, BulkStatus>> = {
  dispatched: 'CREATED',
  running: 'RUNNING',
  cancelling: 'CANCELLATION_PENDING',
  completed: 'COMPLETED',
  failed: 'ERROR',
  cancelled: 'CANCELLED',
};

/** The two kinds of bulk job. */
export type BulkKind = 'query' | 'files';

/** What a bulk job's run answers (and its webhook carries): counts so far and how it ended. */
export interface BulkSummary {
  id: number;
  kind: BulkKind;
  status: BulkStatus;
  /** Export: records written. Batch: rows done without error. */
  recordsCount: number;
  /** Batch: rows that failed (see GET /bulk/{id}/errors). Export: always 0. */
  recordsFailedCount: number;
  /** The export's CEQL query, or the batch manifest's row count. */
  query?: string;
  rowsTotal?: number;
  /** The error that stopped the job, for ERROR. */
  message?: string;
}

const BULK_PATH = /^\/elements\/api-v2\/hubs\/documents\/bulk\/(query|files)(\?|$)/;

/** Whether a stored request is a bulk job's. */
export function isBulkRequest(request: CapturedRequest): boolean {
  return request.method.toUpperCase() === 'POST' && BULK_PATH.test(request.url);
}

/** The bulk kind of a stored request URL, or null. */
export function bulkKindOf(method: string, url: string): BulkKind | null {
  if (method.toUpperCase() !== 'POST') return null;
  const m = BULK_PATH.exec(url);
  return m ? (m[1] as BulkKind) : null;
}

/**
 * The outcome of a bulk job's run: `statusCode` and `payload` are its replayed answer;
 * `cancelled` whether a cancel stopped it.
 */
export function bulkOutcome(job: ClaimedJob, statusCode: number, payload: Buffer, cancelled: boolean, progress: StoredProgress | null): JobOutcome {
  let response: Record<string, unknown>;
  try {
    response = JSON.parse(payload.toString('utf8'));
  } catch {
    response = { message: payload.toString('utf8').slice(0, 1000) };
  }
  const ok = statusCode >= 200 && statusCode < 300;
  const execution: JobOutcome['execution'] = ok ? 'completed' : cancelled ? 'cancelled' : 'failed';
  const status = BULK_STATUS[execution];
  if (!ok && typeof response.status !== 'string') {
    response = { id: job.eventId, status, recordsCount: 0, recordsFailedCount: 0, message: response.message, providerMessage: response.providerMessage };
  }
  response.status = status;
  return {
    eventId: job.eventId,
    execution,
    statusCode,
    response,
    progress,
    queue: job.request.headers[POLLED_HEADER] === 'true',
    buildNotification: (notificationId) => bulkNotification(notificationId, { eventId: job.eventId, instanceId: job.instanceId }, execution, statusCode, response, progress),
  };
}

/**
 * The outcome of bulk job `event` cancelled before any runner took it: its summary with nothing
 * done, answered `statusCode` (a cancel's). A polled job's notification stays queued, as when
 * it ends after running.
 */
export function bulkCancelledBeforeStart(event: Pick<EventRecord, 'id' | 'instanceId' | 'method' | 'url' | 'callbackUrl'>, statusCode: number): JobOutcome {
  const kind = bulkKindOf(event.method, event.url);
  if (!kind) throw new Error(`event ${event.id} is not a bulk job`);
  const query = kind === 'query' ? new URL(event.url, 'http://ferry.invalid').searchParams.get('q') : null;
  const response: BulkSummary = { id: event.id, kind, status: 'CANCELLED', recordsCount: 0, recordsFailedCount: 0, ...(query !== null ? { query } : {}) };
  return {
    eventId: event.id,
    execution: 'cancelled',
    statusCode,
    response,
    progress: null,
    queue: event.callbackUrl === '',
    buildNotification: (notificationId) => bulkNotification(notificationId, { eventId: event.id, instanceId: event.instanceId }, 'cancelled', statusCode, response, null),
  };
}

/** A bulk job's webhook body: its summary's fields at the top level, then the usual event fields. */
function bulkNotification(
  notificationId: number,
  event: { eventId: number; instanceId: number },
  execution: JobOutcome['execution'],
  statusCode: number,
  response: object,
  progress: StoredProgress | null,
): string {
  return JSON.stringify({
    ...response,
    id: event.eventId,
    eventId: event.eventId,
    instanceId: event.instanceId,
    notificationId,
    eventStatus: execution,
    statusCode,
    response,
    progress: presentProgress(progress, execution),
  });
}
