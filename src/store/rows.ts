/**
 * Row → type mappings shared by both stores. The schemas keep the same column names and the
 * same encodings (millisecond times, JSON text for tags, configuration and responses); the one
 * difference, booleans (SQLite 0/1, PostgreSQL true/false), is absorbed by `Boolean()`.
 */
import type { AcceptInput, ClaimedJob, DeliveryListing, DueNotification, EventRecord, Page } from './async.js';
import { encodeCursor } from './cursor.js';
import { parseProgress } from '../async/progress.js';
import type { Instance, Organization, RetiredSignatureKey, User } from './store.js';

export type Row = Record<string, any>;

const date = (ms: unknown): Date => new Date(Number(ms));
const dateOrNull = (ms: unknown): Date | null => (ms == null ? null : date(ms));

export const toOrganization = (r: Row): Organization => ({ id: r.id, name: r.name, createdDate: date(r.created_at) });

export const toUser = (r: Row): User => ({
  id: r.id,
  organizationId: r.organization_id,
  emailAddress: r.email,
  firstName: r.first_name,
  lastName: r.last_name,
  createdDate: date(r.created_at),
});

/** The `retired_signature_keys` column: JSON `[{key, until (ms)}]`. */
export function serialiseRetiredKeys(keys: RetiredSignatureKey[]): string {
  return JSON.stringify(keys.map((k) => ({ key: k.key, until: k.until.getTime() })));
}

function parseRetiredKeys(text: unknown): RetiredSignatureKey[] {
  if (typeof text !== 'string' || text === '') return [];
  return (JSON.parse(text) as { key: string; until: number }[]).map((k) => ({ key: k.key, until: new Date(Number(k.until)) }));
}

export const toInstance = (r: Row): Instance => ({
  id: r.id,
  organizationId: r.organization_id,
  userId: r.user_id,
  elementKey: r.element_key,
  name: r.name,
  tags: JSON.parse(r.tags),
  configuration: JSON.parse(r.configuration),
  retiredSignatureKeys: parseRetiredKeys(r.retired_signature_keys),
  disabled: Boolean(r.disabled),
  valid: Boolean(r.valid),
  createdDate: date(r.created_at),
  updatedDate: date(r.updated_at),
});

/** An event row with its notification row (if any) and its delivery rows, oldest first. */
export function toEvent(r: Row, n: Row | undefined, deliveries: Row[]): EventRecord {
  return {
    id: r.id,
    organizationId: r.organization_id,
    instanceId: r.instance_id,
    userId: r.user_id,
    createdDate: date(r.created_at),
    status: r.status,
    execution: r.execution,
    statusCode: r.status_code,
    method: r.method,
    url: r.url,
    callbackUrl: r.callback_url,
    startedDate: dateOrNull(r.started_at),
    finishedDate: dateOrNull(r.finished_at),
    response: r.response == null ? null : JSON.parse(r.response),
    progress: parseProgress(r.progress),
    notification: n
      ? { id: n.id, status: n.status, body: n.body, attempts: n.attempts, nextAttemptDate: dateOrNull(n.due_at) }
      : null,
    deliveries: deliveries.map((d) => ({
      at: date(d.at),
      url: d.url,
      statusCode: d.status_code,
      error: d.error,
      durationMs: d.duration_ms,
    })),
  };
}

export const toDeliveryListing = (r: Row): DeliveryListing => ({
  notificationId: r.id,
  subscriptionId: r.subscription_id,
  eventId: r.event_id,
  url: r.url,
  status: r.status,
  createdDate: date(r.created_at),
  updatedDate: date(r.updated_at),
});

/** A page from `limit + 1` rows ordered by `id`: the extra row only says there is a next page. */
export function pageOf<T>(rows: Row[], limit: number, map: (r: Row) => T): Page<T> {
  const page = rows.slice(0, limit);
  return { items: page.map(map), next: rows.length > limit ? encodeCursor(page[page.length - 1].id) : null };
}

/** A claimed notification row (joined with its subscription's url and its event's instance). */
export const toDueNotification = (r: Row): DueNotification => ({
  notificationId: r.id,
  eventId: r.event_id,
  organizationId: r.organization_id,
  instanceId: r.instance_id,
  subscriptionId: r.subscription_id,
  url: r.url,
  body: r.body,
  attempts: r.attempts,
  createdDate: date(r.created_at),
  acceptedDate: r.accepted_at == null ? undefined : date(r.accepted_at),
  traceparent: r.traceparent ?? null,
  tracestate: r.tracestate ?? null,
});

/** The job of an accepted input that a store handed off in the accepting transaction (never claimed before). */
export const handedOffJob = (input: AcceptInput, eventId: number): ClaimedJob => ({
  eventId,
  organizationId: input.organizationId,
  userId: input.userId,
  instanceId: input.instanceId,
  request: input.request,
  body: input.body,
  attempts: 0,
});
