/**
 * Cancellation of async events (issue 16): what a cancel answers, and the outcome a cancelled
 * job ends with. The store decides atomically (AsyncStore.cancelEvent): a waiting job is
 * completed as cancelled at once and never runs; a running one's event becomes `cancelling`,
 * and its runner — on this thread, on the runner thread, or on another node — aborts the job's
 * signal; the job stops at its next safe point and ends `cancelled`, listing what it finished.
 *
 * How a runner learns of a cancel, fastest first: this node's API tells its own runner (or
 * runner thread) directly; on PostgreSQL a NOTIFY on the cancel channel makes every node check
 * its running jobs; and every lease heartbeat checks them too (AsyncStore.cancelledAmong), so
 * a lost hint costs at most a heartbeat (FERRY_LEASE / 3).
 */
import type { ChangeEvent } from '../documents/service.js';
import { conflict, notFound } from '../errors.js';
import type { EventRecord, ExecutionState, JobOutcome } from '../store/async.js';
import { isFinal } from '../store/async.js';
import type { Store } from '../store/store.js';
import type { Spool } from './spool.js';
import { presentProgress, type StoredProgress } from './progress.js';
import { bulkCancelledBeforeStart, bulkKindOf } from '../bulk/outcome.js';

/** The statusCode of a cancelled event (its webhook and the events API): the request was stopped. */
export const CANCELLED_STATUS = 409;

/** The notification body of an event that ended in `execution` (DESIGN §1.5, plus `progress`). */
export function notificationBody(
  notificationId: number,
  event: { eventId: number; instanceId: number },
  execution: 'completed' | 'failed' | 'cancelled',
  statusCode: number,
  response: unknown,
  progress: StoredProgress | null,
): string {
  return JSON.stringify({
    eventId: event.eventId,
    instanceId: event.instanceId,
    response,
    notificationId,
    eventStatus: execution,
    statusCode,
    progress: presentProgress(progress, execution),
  });
}

/** The outcome of a job stopped by a cancel: `changes` lists what it finished before it stopped. */
export function cancelledOutcome(eventId: number, instanceId: number, changes: ChangeEvent[], progress: StoredProgress | null): JobOutcome {
  const response = { events: changes };
  return {
    eventId,
    execution: 'cancelled',
    statusCode: CANCELLED_STATUS,
    response,
    progress,
    buildNotification: (id) => notificationBody(id, { eventId, instanceId }, 'cancelled', CANCELLED_STATUS, response, progress),
  };
}

/** Where a cancel of a running job is announced on this node (its runner, or runner thread). */
export type LocalCancel = (eventId: number) => void;

/**
 * Cancels the organization's event `eventId` (of instance `instanceId`, when the route names
 * one) and returns it as it now is. Not found (or another instance's) → notFound; finished →
 * conflict naming its final state; cancelling or cancelled already → unchanged. A job that no
 * runner took yet ends here, with the outcome its kind ends with when a cancel stops it.
 */
export async function cancelEvent(
  store: Store,
  organizationId: number,
  eventId: number,
  instanceId: number | undefined,
  hooks: { local?: LocalCancel; wakeSender?: () => void; spool?: Pick<Spool, 'remove'> },
): Promise<EventRecord> {
  const missing = () => notFound(`No event ${eventId} in your organization${instanceId === undefined ? '' : ` for instance ${instanceId}`}`);
  const found = await store.getEvent(organizationId, eventId);
  if (!found || (instanceId !== undefined && found.instanceId !== instanceId)) throw missing();
  const answer = await store.cancelEvent(organizationId, eventId, (instance) =>
    bulkKindOf(found.method, found.url) ? bulkCancelledBeforeStart(found, CANCELLED_STATUS) : cancelledOutcome(eventId, instance, [], null),
  );
  if (!answer) throw missing();
  if (isFinal(answer.before) && answer.before !== 'cancelled') throw finished(eventId, answer.before);
  if (answer.after === 'cancelling') hooks.local?.(eventId);
  if (answer.after === 'cancelled' && answer.before !== 'cancelled') hooks.wakeSender?.();
  // The body of an upload that will never run. What a crash (or a failed unlink) leaves behind,
  // the start's sweep removes: no job refers to it any more.
  if (answer.spool) await hooks.spool?.remove(answer.spool).catch(() => undefined);
  const event = await store.getEvent(organizationId, eventId);
  if (!event) throw missing();
  return event;
}

function finished(eventId: number, state: ExecutionState) {
  return conflict(`Event ${eventId} has already finished: its execution state is ${state}, so there is nothing to cancel`);
}
