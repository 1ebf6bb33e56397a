/**
 * The HTTP listener of a worker node (role `worker`): it serves no API, only the operator's
 * routes — `/healthz`, `/readyz`, `/metrics` (routes.ts) — on PORT, so Kubernetes can probe a
 * worker and Prometheus can scrape the job and webhook counters, which workers record.
 *
 * May import: Node, fastify, pino, errors, config, store types, http/errors (the one error
 * mapping), observability/.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { notFound } from '../errors.js';
import { errorHandler } from '../http/errors.js';
import type { Store } from '../store/store.js';
import { recordRequests } from './request-log.js';
import { operationsRoutes, type NodeOperations } from './routes.js';

/** Starts the worker's operations listener on config.host:config.port; resolves once listening. */
export async function startOperationsServer(config: Config, store: Store, node: NodeOperations, log: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    connectionTimeout: config.idleTimeoutMs,
  }) as unknown as FastifyInstance;
  recordRequests(app, log, config.metrics);
  operationsRoutes(app, config, store, node);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    errorHandler(notFound(`No route ${request.method} ${request.url.split('?')[0]}: a worker node serves only /healthz, /readyz and /metrics`), request, reply);
  });
  await app.listen({ port: config.port, host: config.host });
  return app;
}
