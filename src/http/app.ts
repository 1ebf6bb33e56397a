/**
 * Builds the Fastify application: the Open Connectors-compatible API under /elements/api-v2.
 * Cross-cutting behaviour lives here — request ids, CORS, the error mapping, the OpenAPI
 * document — and each group of routes is a plugin in routes/.
 */
import { bulkRoutes } from '../bulk/routes.js';
import crypto from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import AjvModule from 'ajv';
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
import { FerryError, invalid, notFound } from '../errors.js';
import { Authenticator, type Identity, type InternalIdentity } from './auth.js';
import { errorHandler } from './errors.js';
import type { RateLimiter } from './ratelimit.js';
import type { AuthFailureLimiter } from './auth-failures.js';
import { platformRoutes } from './routes/platform.js';
import { instanceRoutes } from './routes/instances.js';
import { documentRoutes } from './routes/documents.js';
import { linkRoutes } from './routes/links.js';
import { discoveryRoutes } from './routes/discovery.js';
import { eventRoutes } from './routes/events.js';
import { consoleRoutes } from './console.js';
import { announcesBody } from './body.js';
import { settleUnreadBodies } from './unread-body.js';
import { API_BASE } from './api-base.js';
import type { AsyncIntake } from '../async/accept.js';
import { recordRequests } from '../observability/request-log.js';
import { lazyChildLoggerFactory } from '../observability/lazy-logger.js';
import { operationsRoutes, type NodeOperations } from '../observability/routes.js';
import type { SpooledBody } from '../store/async.js';
import type { JobContext } from '../documents/job.js';
import { COMPONENT_SCHEMAS } from './openapi/schemas.js';
import { documentRoute } from './openapi/transform.js';

const EXPOSED_HEADERS =
  'Elements-Returned-Count, Elements-Total-Count, Elements-Request-Id, Elements-Next-Page-Token, Elements-Trace-Id, Elements-Error, Content-Disposition';

/**
 * Request ids: 24 hex characters, unique per process run — a random 12-hex prefix chosen at
 * start and a 12-hex counter — so no request pays for random bytes.
 */
/** Methods Ferry routes; a 405 names those a path has. */
const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
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
  /** Contexts of the jobs being replayed, keyed by job id, set by the runner (executor.ts). */
  jobContexts: Map<number, JobContext>;
  /**
   * The context synchronous hub requests run as: their writes register their temp files in the
   * node's registry (documents/sync-temps.ts). Absent: SYNC_JOB, nothing registered.
   */
  syncJob?: JobContext;
  /** Per-organization request limit (absent = unlimited). */
  rateLimiter?: RateLimiter;
  /** Failed-authentication limit per client address (absent = unlimited). */
  authFailures?: AuthFailureLimiter;
  /** Wakes this node's sender (after a redelivery request). */
  wakeSender?: () => void;
  /** Probes and metrics (observability/routes.ts); absent on a runner thread's app. */
  operations?: NodeOperations;
  /** Stops a cancelled job if this node's runner (or runner thread) runs it (async/cancel.ts). */
  cancelJob?: (eventId: number) => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity | null;
    internal: InternalIdentity | null;
    changes: ChangeEvent[] | null;
    /** The raw body of an asynchronous request, captured before parsing. */
    asyncBody: Buffer | null;
    /** An asynchronous upload's body in the spool, until its job owns it (async/spool.ts). */
    asyncSpool: SpooledBody | null;
    /** The job a replayed request runs as (documents/job.ts); null for an outside request. */
    job: JobContext | null;
  }
  interface FastifyInstance {
    /**
     * False once the app began to close: a replay then goes through `inject`, which refuses it
     * (the job runs again after its lease) where the router would answer 503 (async/replay.ts).
     */
    routesOpen(): boolean;
  }
}

/**
 * Validators for the HTTP edge. Query strings, params and headers arrive as text, so their
 * schemas coerce ("10" → 10, one `tags` → [tags]); JSON bodies are typed already and are checked
 * strictly: `{"path": 42}` is a 400 naming the field, never silently the path "42".
 */
function validatorCompiler() {
  const Ajv = AjvModule.default;
  const common = { useDefaults: true, removeAdditional: false, allErrors: false, addUsedSchema: false } as const;
  const text = new Ajv({ ...common, coerceTypes: 'array' });
  const json = new Ajv({ ...common, coerceTypes: false });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? json : text).compile(schema);
}

/**
 * Answers what Node's HTTP parser refuses before Fastify sees a request (headers too large,
 * malformed request line or header bytes, headers too slow) with the usual error body, then
 * closes the connection.
 */
function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'The request headers are too large (16 KiB at most)']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request headers took too long to arrive (FERRY_HEADERS_TIMEOUT)']
        : [400, 'The request is not valid HTTP (bad request line, header name or header value)'];
  const requestId = nextRequestId();
  const body = JSON.stringify({ requestId, message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nElements-Request-Id: ${requestId}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Slow-client protection without cutting slow-but-progressing uploads. Node's requestTimeout
 * would bound a whole request, a 200 MB upload included, so instead: headers must arrive within
 * FERRY_HEADERS_TIMEOUT (Node's headersTimeout); a connection silent for FERRY_IDLE_TIMEOUT while
 * a request is being received or a response sent is closed — but not while a complete request is
 * still being handled (a long folder copy sends nothing until it ends; backend timeouts bound it);
 * and a non-upload body must arrive within FERRY_BODY_TIMEOUT, so a JSON body trickled a byte at a
 * time cannot hold a connection forever.
 */
function guardConnections(app: FastifyInstance, config: Config): void {
  const current = new WeakMap<Socket, { req: http.IncomingMessage; res: http.ServerResponse }>();
  app.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => current.set(req.socket, { req, res }));
  app.server.on('timeout', (socket: Socket) => {
    const exchange = current.get(socket);
    if (exchange && exchange.req.complete && !exchange.res.headersSent && !exchange.res.writableEnded) return;
    socket.destroy();
  });
  app.addHook('onRequest', async (request, reply) => {
    const raw = request.raw;
    if (raw.complete || !announcesBody(raw.headers) || /^multipart\//i.test(raw.headers['content-type'] ?? '')) return;
    const timer = setTimeout(() => {
      if (!raw.complete) raw.socket?.destroy?.();
    }, config.bodyTimeoutMs);
    timer.unref();
    // Also once answered: a body nobody read (a request refused before its body, a replayed
    // job's request) never ends, and the timer would hold the exchange for FERRY_BODY_TIMEOUT.
    const clear = () => clearTimeout(timer);
    raw.once('end', clear);
    raw.once('close', clear);
    reply.raw.once('finish', clear);
    reply.raw.once('close', clear);
  });
}

export async function buildApp(services: Services, logger: Logger): Promise<FastifyInstance> {
  const { config } = services;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.maxBody,
    requestTimeout: 0,
    connectionTimeout: config.idleTimeoutMs,
    keepAliveTimeout: 65_000,
    http: {
      headersTimeout: config.headersTimeoutMs,
      // How often Node checks headersTimeout: often enough that the limit is kept to about a second.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.headersTimeoutMs / 4))),
      // Node would answer a missing Host with a bare 400; the onRequest hook answers it with the
      // error body instead.
      requireHostHeader: false,
    },
    clientErrorHandler,
    forceCloseConnections: true,
    genReqId: nextRequestId,
    // Each request's logger is built only when it writes a line (observability/lazy-logger.ts).
    childLoggerFactory: lazyChildLoggerFactory,
    logController: new LogController({ disableRequestLogging: true }),
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

  app.setValidatorCompiler(validatorCompiler());
  guardConnections(app as unknown as FastifyInstance, config);
  recordRequests(app as unknown as FastifyInstance, logger, config.metrics);
  settleUnreadBodies(app as unknown as FastifyInstance);

  app.decorateRequest('identity', null);
  app.decorateRequest('internal', null);
  app.decorateRequest('changes', null);
  app.decorateRequest('asyncBody', null);
  app.decorateRequest('asyncSpool', null);
  app.decorateRequest('job', null);

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

  let open = true;
  app.decorate('routesOpen', () => open);
  app.addHook('preClose', (done) => {
    open = false;
    done();
  });
  app.addHook('onRequest', async (request, reply) => {
    commonHeaders(reply, request.id);
    if (request.raw.httpVersion === '1.1' && !request.headers.host) throw invalid('An HTTP/1.1 request needs a Host header');
    request.internal = services.auth.takeInternal(request);
    if (request.internal) request.job = services.jobContexts.get(request.internal.jobId) ?? null;
  });

  // Change logs of replayed jobs go back to the runner when the reply is sent.
  app.addHook('onSend', async (request) => {
    if (request.internal && request.changes) services.jobChanges.set(request.internal.jobId, request.changes);
  });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    // A path that exists for other methods answers 405 with them in Allow, not 404.
    const allowed = ROUTE_METHODS.filter((method) => method !== request.method && app.findRoute({ method, url: path }));
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      const error = new FerryError('method_not_allowed', `${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}`);
      return errorHandler(error, request, reply);
    }
    errorHandler(notFound(`No route ${request.method} ${path}; see ${API_BASE}/docs`), request, reply);
  });

  await app.register(multipart, {
    limits: { fields: 20, fieldSize: 64 * 1024, files: 1, parts: 25, headerPairs: 100, fileSize: Number.MAX_SAFE_INTEGER },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Ferry', version: '0.1.0', description: 'Open Connectors-compatible connector gateway' },
      components: {
        securitySchemes: { elements: { type: 'apiKey', in: 'header', name: 'Authorization' } },
        schemas: COMPONENT_SCHEMAS as any,
      },
      security: [{ elements: [] }],
    },
    // Documentation only (openapi/): merged into each route's schema when the document is built.
    transform: documentRoute as any,
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

  if (services.operations) operationsRoutes(app as unknown as FastifyInstance, config, services.store, services.operations);

  await app.register(
    async (api) => {
      await api.register(platformRoutes, { services });
      await api.register(instanceRoutes, { services });
      await api.register(eventRoutes, { services });
      await api.register(documentRoutes, { services });
      await api.register(bulkRoutes, { services });
      await api.register(linkRoutes, { services });
      await api.register(discoveryRoutes, { services });
    },
    { prefix: API_BASE },
  );
  await app.register(consoleRoutes);
  return app as unknown as FastifyInstance;
}
