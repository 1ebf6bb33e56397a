/**
 * Row → type mappings shared by both stores. The schemas keep the same column names and the
 * same encodings (millisecond times, JSON text for tags, configuration and responses); the one
 * difference, booleans (SQLite 0/1, PostgreSQL true/false), is absorbed by `Boolean()`.
 */
import type { EventRecord } from './async.js';
import type { Instance, Organization, User } from './store.js';

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

export const toInstance = (r: Row): Instance => ({
  id: r.id,
  organizationId: r.organization_id,
  userId: r.user_id,
  elementKey: r.element_key,
  name: r.name,
  tags: JSON.parse(r.tags),
  configuration: JSON.parse(r.configuration),
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
