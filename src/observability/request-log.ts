/**
 * What the HTTP edge records about every request once it is answered: one JSON log line (pino)
 * and, with metrics on, the request counter and duration histogram. Also reads an incoming W3C
 * `traceparent`, so a traced request's log lines — a replayed job's included — carry its trace id.
 *
 * The log line holds the `Elements-Request-Id` (`requestId`), method, route pattern, status,
 * duration, organization and instance ids, and the trace id when there is one; a replayed job's
 * line adds `eventId` and `replay: true`. Never the URL (its query may hold a signed link's
 * token), headers, bodies or anything secret. Probes and scrapes are logged at debug level, so
 * a Kubernetes probe every few seconds does not drown the log.
 *
 * Replayed jobs (internal requests) are logged but not counted in the HTTP metrics: the job
 * metrics count them.
 *
 * May import: Node, fastify, pino, observability/.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { metrics } from './metrics.js';
import { parseTraceparent, TRACEPARENT, TRACESTATE, type TraceContext } from './tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's W3C trace context: incoming, or started by an async accept. */
    trace: TraceContext | null;
  }
}

/** Routes logged at debug level (probes and scrapes). */
export const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/** The `route` label and log field of a request nothing matched. */
export const UNMATCHED_ROUTE = 'unmatched';

interface Identified {
  identity?: { organizationId: number; instance?: { id: number } } | null;
  internal?: { organizationId: number; instanceId: number; jobId: number } | null;
}

/** Installs the hooks on `app`; `countMetrics` false leaves the HTTP metrics alone (FERRY_METRICS=off). */
export function recordRequests(app: FastifyInstance, logger: Logger, countMetrics: boolean): void {
  app.decorateRequest('trace', null);

  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    const traceparent = request.headers[TRACEPARENT];
    if (traceparent !== undefined) {
      const context = parseTraceparent(traceparent, request.headers[TRACESTATE]);
      if (context) {
        request.trace = context;
        request.log = request.log.child({ traceId: context.traceId });
      }
    }
    done();
  });

  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const status = reply.statusCode;
    const ms = reply.elapsedTime;
    const { identity, internal } = request as unknown as Identified;
    if (countMetrics && !internal) metrics.httpRequest(request.method, route, status, ms / 1000);
    const level = QUIET_ROUTES.has(route) ? 'debug' : 'info';
    if (logger.isLevelEnabled(level)) {
      const line: Record<string, unknown> = {
        requestId: request.id,
        method: request.method,
        route,
        status,
        durationMs: Math.round(ms * 1000) / 1000,
      };
      const organizationId = internal?.organizationId ?? identity?.organizationId;
      const instanceId = internal?.instanceId ?? identity?.instance?.id;
      if (organizationId !== undefined) line.organizationId = organizationId;
      if (instanceId !== undefined) line.instanceId = instanceId;
      if (request.trace) line.traceId = request.trace.traceId;
      if (internal) {
        line.replay = true;
        line.eventId = internal.jobId;
      }
      logger[level](line, 'request');
    }
    done();
  });
}
