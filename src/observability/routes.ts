/**
 * The operator's routes, outside the API base and without API authentication:
 * - `GET /healthz` → 200 `{"status":"ok"}` while the process serves (touches nothing else);
 * - `GET /readyz` → 200 `{"status":"ready","checks":{…}}` or 503 `{"status":"unready","checks":{…}}`
 *   (readiness.ts says what is checked);
 * - `GET /metrics` → the Prometheus text format (metrics.ts), unless FERRY_METRICS=off; with
 *   FERRY_METRICS_TOKEN it needs `Authorization: Bearer <token>` (401 otherwise).
 *
 * The store gauges are read here, per scrape; the runner thread's families are fetched here,
 * per scrape. Nothing runs between scrapes.
 *
 * May import: Node, fastify, errors, config, store types, observability/.
 */
import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { unauthenticated } from '../errors.js';
import type { Store } from '../store/store.js';
import { metrics, type FamilyJson } from './metrics.js';
import { readiness, type RunnerProgress } from './readiness.js';

/** What the routes ask the node about itself (built by server.ts). */
export interface NodeOperations {
  /** True from the first stop signal on (lifecycle/drain.ts). */
  draining(): boolean;
  /** The progress of the node's runner, on nodes that run jobs (roles all, worker). */
  runner?: () => Promise<RunnerProgress>;
  /** The families recorded on the node's other threads (its runner thread). */
  threadFamilies?: () => Promise<FamilyJson[][]>;
}

function sameToken(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

/**
 * Registers the probes and, with metrics on, `/metrics` on `app` (at the root), and closes
 * each connection after its answer while the node drains.
 */
export function operationsRoutes(app: FastifyInstance, config: Config, store: Store, node: NodeOperations): void {
  const stallMs = Math.max(60_000, 3 * config.leaseMs);

  // A draining node answers what is in flight and asks each client to reconnect elsewhere.
  app.addHook('onRequest', (_request, reply, done) => {
    if (node.draining()) reply.header('Connection', 'close');
    done();
  });

  app.get('/healthz', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const verdict = await readiness({ schema: () => store.schemaStatus(), runner: node.runner, draining: node.draining, stallMs });
    reply.header('Cache-Control', 'no-store').status(verdict.ready ? 200 : 503);
    return { status: verdict.ready ? 'ready' : 'unready', checks: verdict.checks };
  });

  if (!config.metrics) return;
  const token = config.metricsToken;
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (token) {
      const m = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
      if (!m || !sameToken(m[1].trim(), token)) {
        reply.header('WWW-Authenticate', 'Bearer');
        throw unauthenticated('GET /metrics needs Authorization: Bearer <token>, the token set in FERRY_METRICS_TOKEN');
      }
    }
    const [counts, others] = await Promise.all([store.operationalCounts(), node.threadFamilies?.() ?? Promise.resolve([])]);
    metrics.setStoreGauges(counts);
    const text = await metrics.render(others);
    reply.header('Content-Type', metrics.contentType).header('Cache-Control', 'no-store');
    return text;
  });
}
