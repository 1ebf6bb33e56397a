/**
 * The durable half of asynchronous requests: events, jobs, notifications, deliveries,
 * subscriptions, idempotency keys and stored results. Part of the `Store` interface.
 *
 * Glossary
 * - event: one accepted asynchronous request, from acceptance to its delivered notification.
 *   Its `status` is the platform's (DISPATCHED → CONSUMED → NOTIFIED); its `execution` is
 *   Ferry's detail (dispatched → running → completed | failed; a cancel makes a running job
 *   `cancelling` until it stops, and any unfinished job `cancelled`: EXECUTION_TRANSITIONS).
 * - job: the runnable part of an event, leased by one runner at a time. A job row exists only
 *   while the event waits or runs; completion deletes it in the same transaction that stores
 *   the outcome and creates the notification, so a crash leaves either the job or the outcome.
 * - notification: the webhook body for one finished event, and its delivery state
 *   (created → delivered | retry | queued). Deliveries are the attempts.
 * - subscription: one callback URL of an organization; deactivated when retries run out, so
 *   later notifications queue until it is reactivated.
 */

import type { StoredProgress } from '../async/progress.js';

/** The request as the runner will replay it: never an Authorization header or other secret. */
export interface CapturedRequest {
  method: string;
  /** Path and query under the API base, e.g. "/elements/api-v2/hubs/documents/files?path=/a". */
  url: string;
  headers: Record<string, string>;
  /** An upload's body, in the node's spool (async/spool.ts) rather than in the store. */
  spool?: SpooledBody;
}

/** A request body streamed to a spool file: its name in FERRY_SPOOL_DIR and its size. */
export interface SpooledBody {
  file: string;
  size: number;
}

export interface AcceptInput {
  organizationId: number;
  userId: number;
  instanceId: number;
  callbackUrl: string;
  idempotencyKey: string | null;
  request: CapturedRequest;
  body: Buffer | null;
}

export interface Accepted {
  eventId: number;
  /** True when the idempotency key matched an earlier event (nothing new was stored). */
  duplicate: boolean;
  /** Present when the job was leased to the handoff's owner in the accepting transaction. */
  job?: ClaimedJob;
}

/**
 * Direct handoff: lets a store lease what it has just written (a new job, a new notification)
 * to this node's runner or sender in the same transaction, instead of leaving it for the next
 * claim. The runner/sender stays the only judge of its capacity and fairness: `take` is asked
 * once per new row, inside the transaction, and reserves a slot when it answers true. What is
 * handed off is durable exactly like a claimed row (leased to `owner` until `leaseMs` from now;
 * when the node dies the lease expires and any node claims it). A store may hand off nothing
 * (e.g. when it cannot keep a cross-node limit while doing so): everything then waits for a
 * claim, as without a handoff.
 */
export interface Handoff<T> {
  owner: string;
  leaseMs: number;
  take(item: T): boolean;
}

/** What the sender is asked about a new notification before it is handed off. */
export interface NotificationOffer {
  organizationId: number;
  subscriptionId: number;
  url: string;
}

export interface ClaimedJob {
  eventId: number;
  organizationId: number;
  userId: number;
  instanceId: number;
  request: CapturedRequest;
  body: Buffer | null;
  /** How many times this job was claimed before (takeovers after a lease expired). */
  attempts: number;
  /**
   * Its event was cancelled while the job was not running (a cancel answered while its runner
   * died, say): the runner completes it as cancelled without running it.
   */
  cancelled?: boolean;
}

export type ExecutionState = 'dispatched' | 'running' | 'cancelling' | 'completed' | 'failed' | 'cancelled';

/**
 * The execution state machine, as data: from each state, the states an event may go to. A
 * cancel takes a waiting event straight to `cancelled` (it never runs) and a running one to
 * `cancelling` until its job stops at a safe point; a job that finishes before it reaches one
 * ends `completed` (or `failed`) all the same. The last three states are final.
 */
export const EXECUTION_TRANSITIONS: Readonly<Record<ExecutionState, readonly ExecutionState[]>> = {
  dispatched: ['running', 'cancelled'],
  running: ['completed', 'failed', 'cancelling', 'cancelled'],
  cancelling: ['cancelled', 'completed', 'failed'],
  completed: [],
  failed: [],
  cancelled: [],
};

/** Whether an event may go from `from` to `to` (EXECUTION_TRANSITIONS). */
export function canTransition(from: ExecutionState, to: ExecutionState): boolean {
  return EXECUTION_TRANSITIONS[from]?.includes(to) ?? false;
}

/** Whether `state` is final (nothing follows it). */
export function isFinal(state: ExecutionState): boolean {
  return EXECUTION_TRANSITIONS[state]?.length === 0;
}

/**
 * Whether a cancel changes an event in `state`: not once it is final, nor while it is already
 * `cancelling` (a second cancel answers the event unchanged).
 */
export function cancellable(state: ExecutionState): boolean {
  return canTransition(state, 'cancelled') && state !== 'cancelling';
}

/** The spooled body named in a job's stored request (its JSON text), if it has one. */
export function spooledBodyOf(request: string): SpooledBody | undefined {
  return (JSON.parse(request) as { spool?: SpooledBody }).spool;
}

/** What a cancel found and left: the execution state before and after it. */
export interface CancelAnswer {
  before: ExecutionState;
  after: ExecutionState;
  /** The spooled body of a job this cancel ended before it ran: the caller deletes the file. */
  spool?: SpooledBody;
}
export type EventStatus = 'DISPATCHED' | 'CONSUMED' | 'NOTIFIED';
export type NotificationStatus = 'created' | 'delivered' | 'retry' | 'queued';

/** A stored non-JSON result (a download), served by resultUrl until it expires. */
export interface StoredResult {
  contentType: string;
  data: Buffer;
  expiresAt: Date;
}

export interface JobOutcome {
  eventId: number;
  execution: 'completed' | 'failed' | 'cancelled';
  statusCode: number;
  /** The notification's JSON body, complete (the store assigns nothing in it but notificationId). */
  buildNotification: (notificationId: number) => string;
  /** The `response` shown by the events API. */
  response: unknown;
  result?: StoredResult;
  /** The job's final progress figures (async/progress.ts), null when it reported none. */
  progress?: StoredProgress | null;
  /** When true the notification is created as queued (account failure policy, or subscription inactive). */
  queue?: boolean;
  /** The event's W3C trace context, kept with its notification so the webhook continues it. */
  trace?: { traceparent: string; tracestate?: string };
}

export interface DueNotification {
  notificationId: number;
  eventId: number;
  organizationId: number;
  instanceId: number;
  subscriptionId: number;
  url: string;
  body: string;
  /** Attempts made so far. */
  attempts: number;
  createdDate: Date;
  /** When the event was accepted (end-to-end latency). */
  acceptedDate?: Date;
  /** The event's trace context (observability/tracing.ts), when it has one. */
  traceparent?: string | null;
  tracestate?: string | null;
}

export interface DeliveryRecord {
  notificationId: number;
  url: string;
  at: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  /** What the notification becomes after this attempt. */
  next: { status: 'delivered' } | { status: 'retry'; at: Date } | { status: 'queued'; deactivate: boolean };
}

export interface DeliveryAttempt {
  at: Date;
  url: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export interface EventRecord {
  id: number;
  organizationId: number;
  instanceId: number;
  userId: number;
  createdDate: Date;
  status: EventStatus;
  execution: ExecutionState;
  statusCode: number | null;
  method: string;
  url: string;
  callbackUrl: string;
  startedDate: Date | null;
  finishedDate: Date | null;
  response: unknown;
  /** What the job reported finishing so far (async/progress.ts); null when nothing yet. */
  progress: StoredProgress | null;
  notification: {
    id: number;
    status: NotificationStatus;
    body: string;
    attempts: number;
    nextAttemptDate: Date | null;
  } | null;
  deliveries: DeliveryAttempt[];
}

export interface DeliveryListing {
  notificationId: number;
  subscriptionId: number;
  eventId: number;
  url: string;
  status: NotificationStatus;
  createdDate: Date;
  updatedDate: Date;
}

/** What redelivering one notification did (the HTTP edge maps each to an answer). */
export type RedeliverOutcome =
  | { result: 'redelivered' }
  | { result: 'not_found' }
  | { result: 'not_failed'; status: NotificationStatus }
  | { result: 'in_flight' };

/** Options of the events listing: paging plus the instance and status filters. */
export interface EventListOptions {
  instanceId?: number;
  status?: EventStatus;
  limit: number;
  cursor?: string;
}

/** Filter of the deliveries API (parsed from CEQL by the HTTP layer). */
export interface DeliveryFilter {
  status?: NotificationStatus[];
  url?: string;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor of the next page, null on the last. */
  next: string | null;
}

export interface AsyncStore {
  /**
   * Stores events, jobs and bodies in one transaction (group commit); answers in input order.
   * With a handoff, new jobs that `take` accepts are leased to its owner at once (their events
   * are `running`) and returned in `Accepted.job`.
   */
  acceptEvents(inputs: AcceptInput[], handoff?: Handoff<AcceptInput>): Promise<Accepted[]>;
  /**
   * Leases up to `limit` runnable jobs (ready, or leased with an expired lease) to `owner` for
   * `leaseMs`, at most `perInstance` leased jobs per instance counting those already running.
   */
  claimJobs(owner: string, limit: number, leaseMs: number, perInstance: number): Promise<ClaimedJob[]>;
  /** Extends the leases `owner` holds on these jobs. */
  renewLeases(owner: string, eventIds: number[], leaseMs: number): Promise<void>;
  /**
   * Of these running jobs' events, those cancelled (`cancelling` or `cancelled`): the runner asks
   * at each lease heartbeat, so a cancel reaches a job whatever node or thread runs it.
   */
  cancelledAmong(eventIds: number[]): Promise<number[]>;
  /** Stores a running job's progress figures (written at most every 500 ms per job). */
  recordProgress(eventId: number, progress: StoredProgress): Promise<void>;
  /**
   * Cancels the organization's event `eventId`, in one transaction, or answers null when it has
   * no such event. A job not leased to a live runner is deleted and completed at once with
   * `pending(instanceId)` (it never runs); a running one's event becomes `cancelling` (its runner
   * stops it: see cancelledAmong, and the PostgreSQL store's cancel channel); a finished or
   * already cancelled event is left as it is.
   */
  cancelEvent(organizationId: number, eventId: number, pending: (instanceId: number) => JobOutcome): Promise<CancelAnswer | null>;
  /** Releases every lease (single-process stores at start: the previous process is gone). */
  releaseAllLeases(): Promise<number>;
  /**
   * Records outcomes, deletes their jobs and creates their notifications, in one transaction.
   * With a handoff, new due notifications that `take` accepts are leased to its owner at once
   * and returned (never a queued one).
   */
  completeJobs(owner: string, outcomes: JobOutcome[], handoff?: Handoff<NotificationOffer>): Promise<DueNotification[]>;
  /**
   * Leases due notifications for delivery, oldest due first, leaving out those of the
   * `excludeSubscriptions` (their callback origin is saturated on this node).
   */
  claimNotifications(owner: string, limit: number, leaseMs: number, excludeSubscriptions?: number[]): Promise<DueNotification[]>;
  /** Gives leased notifications back (due again at once), e.g. when their origin is saturated. */
  releaseNotifications(notificationIds: number[]): Promise<void>;
  /** Records delivery attempts and the resulting notification states, in one transaction. */
  recordDeliveries(records: DeliveryRecord[]): Promise<void>;
  /** Earliest time a notification becomes due, or null (the sender sleeps until then). */
  nextNotificationDue(): Promise<Date | null>;
  getEvent(organizationId: number, eventId: number): Promise<EventRecord | null>;
  /** Events newest first, optionally of one instance and/or one status. */
  listEvents(organizationId: number, options: EventListOptions): Promise<Page<EventRecord>>;
  listDeliveries(organizationId: number, filter: DeliveryFilter, options: { limit: number; cursor?: string }): Promise<Page<DeliveryListing>>;
  /** Reactivates matching subscriptions and makes their queued notifications due now; returns how many. */
  redeliver(organizationId: number, filter: DeliveryFilter): Promise<number>;
  /**
   * Redelivers one failed notification (status `retry` or `queued`) now: it becomes due at once
   * with a fresh retry schedule, and its callback URL's subscription is reactivated. Refused for
   * a notification being attempted right now (leased) and for any other status.
   */
  redeliverNotification(organizationId: number, notificationId: number): Promise<RedeliverOutcome>;
  getResult(organizationId: number, eventId: number): Promise<StoredResult | null>;
  /** Deletes expired results and idempotency keys older than `idempotencyBefore`. */
  purgeExpired(now: Date, idempotencyBefore: Date): Promise<void>;
  /** The spool files (SpooledBody.file) of the jobs still waiting or running. */
  spooledJobFiles(): Promise<string[]>;
  /** Counts for tests, metrics and benchmarks. */
  asyncCounts(): Promise<{ jobs: number; events: number; notificationsPending: number }>;
}
