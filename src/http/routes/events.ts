/**
 * Retrieval and replay of asynchronous events (DESIGN §1.5): events with their execution and
 * delivery detail, stored results of async downloads, the deliveries listing and redelivery of
 * queued notifications (in bulk, or one failed notification), and the account's webhook failure
 * policy. Every event shows its job's `progress`, and can be cancelled while it has not finished
 * (issue 16, async/cancel.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { conflict, invalid, notFound } from '../../errors.js';
import type { DeliveryFilter, EventRecord, EventStatus, NotificationStatus } from '../../store/async.js';
import { FAILURE_POLICY_SETTING } from '../../async/sender.js';
import { cancelEvent } from '../../async/cancel.js';
import { presentProgress } from '../../async/progress.js';
import { EXECUTION_TRANSITIONS } from '../../store/async.js';
import { identityOf, intParam, pageHeaders, pagingQuery, platformAuth, type PluginOptions } from './common.js';

/** The platform's event JSON plus Ferry's execution and delivery detail. */
export function presentEvent(e: EventRecord) {
  let notifiedData: unknown = null;
  if (e.notification) {
    try {
      notifiedData = JSON.parse(e.notification.body);
    } catch {
      notifiedData = null;
    }
  }
  return {
    id: e.id,
    eventDate: e.createdDate.toISOString(),
    status: e.status,
    instanceId: e.instanceId,
    callbackUrl: e.callbackUrl,
    providerData: { method: e.method, url: e.url },
    notifiedData,
    execution: {
      state: e.execution,
      statusCode: e.statusCode,
      startedDate: e.startedDate?.toISOString() ?? null,
      finishedDate: e.finishedDate?.toISOString() ?? null,
      durationMs: e.startedDate && e.finishedDate ? e.finishedDate.getTime() - e.startedDate.getTime() : null,
    },
    progress: presentProgress(e.progress, e.execution),
    notification: e.notification
      ? {
          id: e.notification.id,
          status: e.notification.status,
          attempts: e.notification.attempts,
          nextAttemptDate: e.notification.nextAttemptDate?.toISOString() ?? null,
        }
      : null,
    deliveries: e.deliveries.map((d) => ({
      date: d.at.toISOString(),
      url: d.url,
      statusCode: d.statusCode,
      error: d.error,
      durationMs: d.durationMs,
    })),
  };
}

const EVENT_STATUSES: EventStatus[] = ['DISPATCHED', 'CONSUMED', 'NOTIFIED'];

/** The progress object of an event (OpenAPI). */
const progressSchema = {
  type: 'object',
  description:
    'What the job has finished so far: files (items) and bytes, with their totals once known (null until then). Written at most every 500 ms while the job runs; 100 when it completed.',
  properties: {
    percentageComplete: { type: ['integer', 'null'], minimum: 0, maximum: 100, description: '0–100, or null while no total is known' },
    itemsDone: { type: 'integer' },
    itemsTotal: { type: ['integer', 'null'] },
    bytesDone: { type: 'integer' },
    bytesTotal: { type: ['integer', 'null'] },
  },
} as const;

/** An event as the events API shows it (OpenAPI; other fields pass through as they are). */
const eventSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'integer' },
    status: { type: 'string', enum: ['DISPATCHED', 'CONSUMED', 'NOTIFIED'] },
    execution: {
      type: 'object',
      additionalProperties: true,
      properties: {
        state: {
          type: 'string',
          enum: Object.keys(EXECUTION_TRANSITIONS),
          description: 'dispatched → running → completed | failed; a cancel: cancelling (a running job stops at its next safe point) → cancelled',
        },
      },
    },
    progress: progressSchema,
  },
} as const;

const errorSchema = {
  type: 'object',
  properties: { requestId: { type: 'string' }, message: { type: 'string' }, providerMessage: { type: 'string' } },
} as const;

const oneEventSchema = (summary: string, withInstance: boolean) => ({
  schema: {
    summary,
    params: {
      type: 'object',
      properties: { ...(withInstance ? { id: { type: 'string' } } : {}), eventId: { type: 'string' } },
    },
    response: { 200: eventSchema },
  },
});

const cancelSchema = (withInstance: boolean) => ({
  schema: {
    summary: 'Cancel an event that has not finished',
    description:
      'A waiting job never runs (execution.state cancelled at once); a running one stops at its next safe point (between two files of a copy, between two parts of a transfer), removes what it half made, keeps what it finished, and ends cancelled (execution.state cancelling until then). Its webhook is sent as usual, with eventStatus "cancelled" and response.events listing what was done. Cancelling a cancelling or cancelled event answers it unchanged; a completed or failed one answers 409.',
    params: {
      type: 'object',
      properties: { ...(withInstance ? { id: { type: 'string' } } : {}), eventId: { type: 'string' } },
    },
    response: { 200: eventSchema, 404: errorSchema, 409: errorSchema },
  },
});

const STATUSES: NotificationStatus[] = ['created', 'delivered', 'retry', 'queued'];

/**
 * The deliveries `where`: clauses on `status`, `config.url` and `channel` joined by `and`, each
 * `field = 'value'` or `field in ('a', 'b')` (status only). Only the webhook channel exists.
 */
export function parseDeliveryWhere(raw: string | undefined): DeliveryFilter {
  const filter: DeliveryFilter = {};
  if (!raw || !raw.trim()) return filter;
  if (raw.length > 2000) throw invalid('where is longer than 2000 characters');
  const clause = /^\s*(status|config\.url|channel)\s*(=|in)\s*(?:'((?:[^']|'')*)'|\(([^)]*)\))\s*(?:and\s+|$)/i;
  let rest = raw;
  while (rest.trim()) {
    const m = clause.exec(rest);
    if (!m) {
      throw invalid(
        `Cannot parse where at "${rest.trim().slice(0, 40)}"; use status='queued', status in ('queued','retry'), config.url='https://...' or channel='webhook', joined by and`,
      );
    }
    const field = m[1].toLowerCase();
    const values =
      m[2].toLowerCase() === 'in'
        ? [...(m[4] ?? '').matchAll(/'((?:[^']|'')*)'/g)].map((v) => v[1].replace(/''/g, "'"))
        : [(m[3] ?? '').replace(/''/g, "'")];
    if (field === 'status') {
      const bad = values.filter((v) => !STATUSES.includes(v.toLowerCase() as NotificationStatus));
      if (bad.length) throw invalid(`Unknown delivery status ${bad.join(', ')}; use one of ${STATUSES.join(', ')}`);
      filter.status = values.map((v) => v.toLowerCase() as NotificationStatus);
    } else if (field === 'config.url') {
      if (values.length !== 1) throw invalid("config.url takes one value: config.url='https://...'");
      filter.url = values[0];
    } else if (values.some((v) => v.toLowerCase() !== 'webhook')) {
      throw invalid("The only delivery channel is 'webhook'");
    }
    rest = rest.slice(m[0].length);
  }
  return filter;
}

export async function eventRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  const { store } = services;
  app.addHook('onRequest', platformAuth(services));

  async function listEvents(request: FastifyRequest<{ Querystring: any }>, instanceId?: number) {
    const org = identityOf(request).organizationId;
    if (instanceId !== undefined && !(await store.getInstance(org, instanceId))) {
      throw notFound(`No instance ${instanceId} in your organization`);
    }
    const query = request.query as { pageSize: number; nextPage?: string; status?: EventStatus };
    return store.listEvents(org, { instanceId, status: query.status, limit: query.pageSize, cursor: query.nextPage });
  }

  async function oneEvent(request: FastifyRequest, eventId: string, instanceId?: string) {
    const id = intParam(eventId, 'event id');
    const event = await store.getEvent(identityOf(request).organizationId, id);
    if (!event || (instanceId !== undefined && event.instanceId !== intParam(instanceId, 'instance id'))) {
      throw notFound(`No event ${id} in your organization`);
    }
    return presentEvent(event);
  }

  // `status` filters on the platform's event status (Ferry's addition; the console's filter).
  const listSchema = {
    schema: { querystring: { type: 'object', properties: { ...pagingQuery, status: { type: 'string', enum: EVENT_STATUSES } } } },
  };

  app.get<{ Querystring: any }>('/instances/events', listSchema, async (request, reply) => {
    const page = await listEvents(request);
    pageHeaders(reply, page.items.length, page.next);
    return page.items.map(presentEvent);
  });

  app.get<{ Querystring: any; Params: { id: string } }>('/instances/:id/events', listSchema, async (request, reply) => {
    const page = await listEvents(request, intParam(request.params.id, 'instance id'));
    pageHeaders(reply, page.items.length, page.next);
    return page.items.map(presentEvent);
  });

  app.get<{ Params: { eventId: string } }>('/instances/events/:eventId', oneEventSchema('An event, with its progress', false), async (request) =>
    oneEvent(request, request.params.eventId),
  );

  app.get<{ Params: { id: string; eventId: string } }>(
    '/instances/:id/events/:eventId',
    oneEventSchema("An instance's event, with its progress", true),
    async (request) => oneEvent(request, request.params.eventId, request.params.id),
  );

  async function cancel(request: FastifyRequest, eventId: string, instanceId?: string) {
    const id = intParam(eventId, 'event id');
    const instance = instanceId === undefined ? undefined : intParam(instanceId, 'instance id');
    const event = await cancelEvent(store, identityOf(request).organizationId, id, instance, {
      local: services.cancelJob,
      wakeSender: services.wakeSender,
      spool: services.intake?.spool,
    });
    return presentEvent(event);
  }

  app.put<{ Params: { eventId: string } }>('/instances/events/:eventId/cancel', cancelSchema(false), async (request) =>
    cancel(request, request.params.eventId),
  );

  app.put<{ Params: { id: string; eventId: string } }>('/instances/:id/events/:eventId/cancel', cancelSchema(true), async (request) =>
    cancel(request, request.params.eventId, request.params.id),
  );

  app.get<{ Params: { eventId: string } }>('/instances/events/:eventId/result', async (request, reply) => {
    const id = intParam(request.params.eventId, 'event id');
    const result = await store.getResult(identityOf(request).organizationId, id);
    if (!result) throw notFound(`Event ${id} has no stored result (not a download, not finished, or past its retention)`);
    return reply.header('Content-Type', result.contentType).header('Content-Length', String(result.data.length)).send(result.data);
  });

  const whereSchema = {
    schema: { querystring: { type: 'object', properties: { where: { type: 'string', maxLength: 2000 }, ...pagingQuery } } },
  };

  app.get<{ Querystring: any }>('/notifications/subscriptions/deliveries', whereSchema, async (request, reply) => {
    const filter = parseDeliveryWhere((request.query as any).where);
    const page = await store.listDeliveries(identityOf(request).organizationId, filter, {
      limit: (request.query as any).pageSize,
      cursor: (request.query as any).nextPage,
    });
    pageHeaders(reply, page.items.length, page.next);
    return page.items.map((d) => ({
      notificationId: d.notificationId,
      subscriptionId: d.subscriptionId,
      eventId: d.eventId,
      status: d.status,
      channel: 'webhook',
      config: { url: d.url },
      createdDate: d.createdDate.toISOString(),
      updatedDate: d.updatedDate.toISOString(),
    }));
  });

  app.put<{ Querystring: any }>('/notifications/subscriptions/deliveries', whereSchema, async (request) => {
    const filter = parseDeliveryWhere((request.query as any).where);
    const redelivered = await store.redeliver(identityOf(request).organizationId, filter);
    services.wakeSender?.();
    return { redelivered };
  });

  // Ferry's addition: redeliver exactly one failed (`retry`) or `queued` notification now, e.g.
  // from the console's event page. The collection PUT above is the platform's bulk form.
  app.put<{ Params: { notificationId: string } }>('/notifications/subscriptions/deliveries/:notificationId', async (request) => {
    const id = intParam(request.params.notificationId, 'notification id');
    const outcome = await store.redeliverNotification(identityOf(request).organizationId, id);
    switch (outcome.result) {
      case 'not_found':
        throw notFound(`No notification ${id} in your organization; an event's notification.id names it`);
      case 'not_failed':
        throw conflict(`Notification ${id} is ${outcome.status}; only a failed (retry) or queued notification can be redelivered`);
      case 'in_flight':
        throw conflict(`Notification ${id} is being attempted right now; try again when that attempt ends`);
    }
    services.wakeSender?.();
    return { redelivered: 1 };
  });

  app.get('/accounts/settings', async (request) => {
    const settings = await store.getSettings(identityOf(request).organizationId);
    return { [FAILURE_POLICY_SETTING]: 'retry', ...settings };
  });

  app.patch<{ Body: Record<string, unknown> }>(
    '/accounts/settings',
    { schema: { body: { type: 'object', maxProperties: 16 } } },
    async (request) => {
      const body = request.body ?? {};
      const unknownKeys = Object.keys(body).filter((k) => k !== FAILURE_POLICY_SETTING);
      if (unknownKeys.length) throw invalid(`Unknown account setting(s) ${unknownKeys.join(', ')}; known: ${FAILURE_POLICY_SETTING}`);
      const policy = body[FAILURE_POLICY_SETTING];
      if (policy !== undefined && policy !== 'retry' && policy !== 'queue') {
        throw invalid(`${FAILURE_POLICY_SETTING} must be "retry" or "queue"`);
      }
      const org = identityOf(request).organizationId;
      if (policy !== undefined) await store.setSettings(org, { [FAILURE_POLICY_SETTING]: policy as string });
      const settings = await store.getSettings(org);
      return { [FAILURE_POLICY_SETTING]: 'retry', ...settings };
    },
  );
}
