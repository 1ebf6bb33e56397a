/**
 * Builds the Fastify application: the Open Connectors-compatible API under /elements/api-v2.
 * Cross-cutting behaviour lives here — request ids, CORS, the error mapping, the OpenAPI
 * document — and each group of routes is a plugin in routes/.
 */
import crypto from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Store } from '../store/store.js';
import type { InstanceService } from '../instances/service.js';
import type { LinkSigner } from '../documents/links.js';
import type { ChangeEvent } from '../documents/service.js';
import { invalid, notFound } from '../errors.js';
import { Authenticator, type Identity, type InternalIdentity } from './auth.js';
import { errorHandler } from './errors.js';
import type { RateLimiter } from './ratelimit.js';
import { platformRoutes } from './routes/platform.js';
import { instanceRoutes } from './routes/instances.js';
import { documentRoutes } from './routes/documents.js';
import { linkRoutes } from './routes/links.js';
import { eventRoutes } from './routes/events.js';
import type { AsyncIntake } from '../async/accept.js';

export const API_BASE = '/elements/api-v2';

const EXPOSED_HEADERS =
  'Elements-Returned-Count, Elements-Total-Count, Elements-Request-Id, Elements-Next-Page-Token, Elements-Trace-Id, Elements-Error, Content-Disposition';

/**
 * Request ids: 24 hex characters, unique per process run — a random 12-hex prefix chosen at
 * start and a 12-hex counter — so no request pays for random bytes.
 */
const REQUEST_ID_PREFIX = crypto.randomBytes(6).toString('hex');
let requestCounter = 0;
function nextRequestId(): string {
  requestCounter = (requestCounter + 1) % 0xffffffffffff;
  return REQUEST_ID_PREFIX + requestCounter.toString(16).padStart(12, '0');
}

/** Headers every response carries, errors included. */
function commonHeaders(reply: FastifyReply, requestId: string): void {
  reply.header('Elements-Request-Id', requestId);
  reply.header('Access-Control-Allow-Origin', '*');
  reply.header('Access-Control-Expose-Headers', EXPOSED_HEADERS);
}

/** Everything the routes need, built once at start (server.ts). */
export interface Services {
  config: Config;
  store: Store;
  instances: InstanceService;
  auth: Authenticator;
  links: LinkSigner;
  /** Present when this node accepts asynchronous requests. */
  intake?: AsyncIntake;
  /** Change logs of replayed jobs, keyed by job id, read by the runner after the replay. */
  jobChanges: Map<number, ChangeEvent[]>;
  /** Per-organization request limit (absent = unlimited). */
  rateLimiter?: RateLimiter;
  /** Wakes this node's sender (after a redelivery request). */
  wakeSender?: () => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity | null;
    internal: InternalIdentity | null;
    changes: ChangeEvent[] | null;
    /** The raw body of an asynchronous request, captured before parsing. */
    asyncBody: Buffer | null;
  }
}

export async function buildApp(services: Services, logger: Logger): Promise<FastifyInstance> {
  const { config } = services;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.maxBody,
    requestTimeout: 0,
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    forceCloseConnections: true,
    genReqId: nextRequestId,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: false } },
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: config.maxPathLength * 20 + 64 },
    // A URL the router cannot decode (bad percent-encoding) or an over-long id is refused before
    // any hook runs; answer it like every other error, with the request id and the error body.
    frameworkErrors: (error, request, reply) => {
      commonHeaders(reply, request.id);
      const message =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? 'A URL segment (an object id) is too long; the path limit is FERRY_MAX_PATH characters'
          : 'The URL is not valid percent-encoding; encode each part with encodeURIComponent';
      errorHandler(invalid(message), request, reply);
    },
  });

  app.decorateRequest('identity', null);
  app.decorateRequest('internal', null);
  app.decorateRequest('changes', null);
  app.decorateRequest('asyncBody', null);

  // JSON routes take JSON only: without this, Fastify's built-in text/plain parser would turn a
  // text body into a string and the client would get a schema 400 instead of the 415 it needs.
  app.removeContentTypeParser('text/plain');
  // Many platform clients send `Content-Type: application/json` on every request, bodiless
  // DELETE and PUT /enabled included: an empty body is "no body", not a JSON error. Routes that
  // need a body still refuse it through their schema.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text === '') return done(null, undefined);
    return parseJson(request, text, done);
  });

  app.addHook('onRequest', async (request, reply) => {
    commonHeaders(reply, request.id);
    request.internal = services.auth.takeInternal(request);
  });

  // Change logs of replayed jobs go back to the runner when the reply is sent.
  app.addHook('onSend', async (request) => {
    if (request.internal && request.changes) services.jobChanges.set(request.internal.jobId, request.changes);
  });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    errorHandler(notFound(`No route ${request.method} ${request.url.split('?')[0]}; see ${API_BASE}/docs`), request, reply);
  });

  await app.register(multipart, {
    limits: { fields: 20, fieldSize: 64 * 1024, files: 1, parts: 25, headerPairs: 100, fileSize: Number.MAX_SAFE_INTEGER },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Ferry', version: '0.1.0', description: 'Open Connectors-compatible connector gateway' },
      components: {
        securitySchemes: { elements: { type: 'apiKey', in: 'header', name: 'Authorization' } },
      },
      security: [{ elements: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: `${API_BASE}/docs` });

  app.options('*', async (_request, reply) => {
    reply
      .header('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
      .header(
        'Access-Control-Allow-Headers',
        'Authorization, Content-Type, Elements-Async-Request, Elements-Async-Callback-Url, Idempotency-Key',
      )
      .header('Access-Control-Max-Age', '600')
      .status(200)
      .send();
  });

  await app.register(
    async (api) => {
      await api.register(platformRoutes, { services });
      await api.register(instanceRoutes, { services });
      await api.register(eventRoutes, { services });
      await api.register(documentRoutes, { services });
      await api.register(linkRoutes, { services });
    },
    { prefix: API_BASE },
  );
  return app as unknown as FastifyInstance;
}
