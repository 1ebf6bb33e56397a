/**
 * Accepting asynchronous requests (DESIGN §1.5). With `Elements-Async-Request: true` a hub
 * request is captured — method, URL, the headers the route needs, the raw body — validated
 * like its synchronous twin (auth, query schema), checked for a usable callback URL, and
 * stored as an event + job. Only after the transaction holding it has committed does the
 * caller get `{eventId, eventStatus: "dispatched"}`: an answered request is never lost.
 *
 * Upload bodies (multipart) are streamed to the spool (spool.ts, fsynced) instead of memory and
 * the store row, so an async upload may be as large as FERRY_ASYNC_MAX_BODY (5 GiB by default);
 * other bodies are small (FERRY_MAX_BODY) and are stored with the job.
 *
 * Group commit: requests arriving in the same event-loop turn share one transaction
 * (`GroupCommit`), so the commit (and its fsync under FERRY_DURABILITY=fsync) is paid once per
 * batch, not once per request.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import type { Config } from '../config.js';
import { FerryError, invalid, tooLarge, unavailable } from '../errors.js';
import type { InstanceService } from '../instances/service.js';
import type { AcceptInput, Accepted, CapturedRequest, Handoff, SpooledBody } from '../store/async.js';
import { crashPoint } from '../testing/crash-points.js';
import { SpoolLimitExceeded, type Spool } from './spool.js';
import type { Store } from '../store/store.js';
import { announcesBody } from '../http/body.js';
import type { EgressPolicy } from './egress.js';
import { metrics } from '../observability/metrics.js';
import { formatTraceparent, newTrace, TRACEPARENT, TRACESTATE, type TraceContext } from '../observability/tracing.js';

export const ASYNC_HEADER = 'elements-async-request';
export const CALLBACK_HEADER = 'elements-async-callback-url';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Set on a stored bulk request accepted without a callback URL: its notification stays queued. */
export const POLLED_HEADER = 'x-ferry-bulk-polled';
/** Longest callback URL accepted (PostgreSQL indexes subscriptions by URL). */
export const MAX_CALLBACK_URL = 2048;

/** Headers never stored with a job: secrets, hop-by-hop headers, and the async controls. */
const DROPPED_HEADERS = new Set([
  'authorization',
  'cookie',
  'proxy-authorization',
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'expect',
  ASYNC_HEADER,
  CALLBACK_HEADER,
  IDEMPOTENCY_HEADER,
  'x-ferry-internal',
  // Set from the request's validated trace context (observability/tracing.ts), not copied.
  TRACEPARENT,
  TRACESTATE,
]);

/** Batches items that arrive in one event-loop turn into one call of `flush` (a store commit, timed for metrics). */
export class GroupCommit<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;

  constructor(private readonly flush: (items: T[]) => Promise<R[]>) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.run());
      }
    });
  }

  private async run(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    try {
      const started = performance.now();
      const results = await this.flush(batch.map((b) => b.item));
      metrics.storeCommit(batch.length, (performance.now() - started) / 1000);
      batch.forEach((b, i) => b.resolve(results[i]));
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }
}

/** `true`/`false` (any case) or absent; anything else is a 400. */
export function asyncRequested(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  const v = Array.isArray(value) ? value.join(',') : value;
  const lower = v.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false' || lower === '') return false;
  throw invalid(`Elements-Async-Request must be true or false, got "${v.slice(0, 40)}"`);
}

/** This node's runner, as the intake sees it (absent on an api-only node). */
export interface LocalRunner {
  /** A handoff for the jobs of one accept batch, or undefined (they wait for a claim). */
  offer(): Handoff<AcceptInput> | undefined;
  /** After the batch committed (or failed, with []): runs what was handed off, wakes for the rest. */
  accepted(handoff: Handoff<AcceptInput> | undefined, accepted: Accepted[]): void;
}

export class AsyncIntake {
  private readonly commit: GroupCommit<AcceptInput, Accepted>;
  /** Callback URLs that passed the egress policy (a pure function of the URL and the static policy). */
  private readonly allowedUrls = new Set<string>();

  constructor(
    private readonly config: Config,
    private readonly store: Store,
    private readonly instances: InstanceService,
    private readonly egress: EgressPolicy,
    /** The node's runner: jobs are handed to it in the accepting transaction when it has room. */
    private readonly runner: () => LocalRunner | undefined,
    /** Where upload bodies wait for their jobs. */
    readonly spool: Spool,
  ) {
    this.commit = new GroupCommit(async (inputs) => {
      const runner = this.runner();
      const handoff = runner?.offer();
      let accepted: Accepted[] = [];
      try {
        accepted = await this.store.acceptEvents(inputs, handoff);
        return accepted;
      } catch (e) {
        if (e instanceof FerryError) throw e;
        throw unavailable('Ferry could not store the request durably right now (storage is full or busy); retry later', {
          retryAfter: 5,
          cause: e,
        });
      } finally {
        runner?.accepted(handoff, accepted);
      }
    });
  }

  /**
   * preParsing hook: for an async request, reads the raw body (bounded by FERRY_ASYNC_MAX_BODY)
   * so it can be stored as sent, then hands the same bytes on to the normal parser.
   */
  async capture(request: FastifyRequest, payload: Readable): Promise<Readable> {
    if (request.internal || !asyncRequested(request.headers[ASYNC_HEADER])) return payload;
    if (!announcesBody(request.headers)) return payload; // nothing to store (request.asyncBody stays null)
    const spooled = /^multipart\//i.test(request.headers['content-type'] ?? '');
    const limit = spooled ? this.config.asyncMaxBody : Math.min(this.config.asyncMaxBody, this.config.maxBody);
    const declared = Number(request.headers['content-length'] ?? 0);
    const refusal = () =>
      tooLarge(
        spooled
          ? `An asynchronous upload may be at most ${limit} bytes (FERRY_ASYNC_MAX_BODY)`
          : `An asynchronous request body may be at most ${limit} bytes (FERRY_MAX_BODY)`,
      );
    if (declared > limit) throw refusal();
    if (spooled) {
      // The bytes go to a spool file as they arrive; nothing parses them here (the multipart
      // parser reads only in the route, which an accepted request never reaches).
      try {
        request.asyncSpool = await this.spool.receive(payload, limit);
      } catch (e) {
        if (e instanceof SpoolLimitExceeded) throw refusal();
        throw e;
      }
      crashPoint('spooled');
      const rest = Readable.from([]);
      (rest as any).receivedEncodedLength = request.asyncSpool.size;
      return rest;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // Read with listeners, not `for await`: leaving a for-await loop destroys the request, and
    // with it the connection, before the 413 is sent (http/unread-body.ts discards the rest).
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          payload.off('data', onData);
          payload.pause();
          reject(refusal());
          return;
        }
        chunks.push(chunk);
      };
      payload.on('data', onData);
      payload.once('end', resolve);
      payload.once('error', reject);
      payload.once('close', () => reject(invalid('The request body ended before it was complete')));
    });
    request.asyncBody = Buffer.concat(chunks);
    const replay = Readable.from(request.asyncBody.length ? [request.asyncBody] : []);
    (replay as any).receivedEncodedLength = size;
    return replay;
  }

  /** onResponse hook: a spooled body no job took (refused, failed, duplicate) is deleted. */
  async release(request: FastifyRequest): Promise<void> {
    if (request.asyncSpool) await this.spool.remove(request.asyncSpool);
    request.asyncSpool = null;
  }

  /**
   * preHandler hook, callback style: accepts an async request instead of running it, and then
   * never calls `done` (Fastify's way for a hook that answered). An async hook would have to
   * return the reply, and Fastify would wait for the response to finish on the reply's `then`
   * (a stream-finished listener per request, a tenth of what an accept adds to a sync ping).
   */
  acceptIfAsync(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    let wanted: boolean;
    try {
      wanted = !request.internal && asyncRequested(request.headers[ASYNC_HEADER]);
    } catch (e) {
      return done(e as Error);
    }
    if (!wanted) return done();
    this.accept(request)
      .then((accepted) => {
        reply
          .header('Elements-Trace-Id', request.trace!.traceId)
          .header('Location', `/elements/api-v2/instances/events/${accepted.eventId}`)
          .status(200)
          .send({ eventId: accepted.eventId, eventStatus: 'dispatched' });
      })
      .catch(done);
  }

  /**
   * Stores `request` as an event + job and resolves once it is durable. `polled` (bulk jobs,
   * issue 17): without a callback URL the job still runs; its notification is kept queued under
   * the empty URL instead of being sent (the caller polls the status).
   */
  async accept(request: FastifyRequest, options: { polled?: boolean } = {}): Promise<Accepted> {
    const identity = request.identity;
    const instance = identity?.instance;
    if (!identity || !instance) throw new Error('async accept without identity');
    const fromHeader = request.headers[CALLBACK_HEADER];
    const key = request.headers[IDEMPOTENCY_HEADER];
    // Node joins repeated custom headers with ", ", so a repeated one contains a comma, and its
    // repetition is only visible in headersDistinct (built on first use: only then).
    if ((typeof fromHeader === 'string' && fromHeader.includes(',')) || (typeof key === 'string' && key.includes(','))) {
      const distinct = request.raw.headersDistinct;
      if ((distinct[CALLBACK_HEADER]?.length ?? 0) > 1) throw invalid('Send Elements-Async-Callback-Url once');
      if ((distinct[IDEMPOTENCY_HEADER]?.length ?? 0) > 1) throw invalid('Send Idempotency-Key once');
    }
    if (Array.isArray(fromHeader)) throw invalid('Send Elements-Async-Callback-Url once');
    const callbackUrl = fromHeader || this.instances.unseal(instance)['event.notification.callback.url'];
    if (!callbackUrl && options.polled) {
      request.headers[POLLED_HEADER] = 'true';
    } else if (!callbackUrl) {
      throw invalid(
        'An asynchronous request needs a callback URL: send the Elements-Async-Callback-Url header, or set the instance configuration event.notification.callback.url',
      );
    }
    if (callbackUrl && !this.allowedUrls.has(callbackUrl)) {
      checkCallbackUrl(this.egress, callbackUrl);
      if (this.allowedUrls.size >= 10_000) this.allowedUrls.clear();
      this.allowedUrls.add(callbackUrl);
    }
    if (Array.isArray(key) || (key !== undefined && (key.length === 0 || key.length > 255))) {
      throw invalid('Idempotency-Key must be sent once, 1 to 255 characters');
    }
    // The event continues the caller's trace, or starts one (observability/tracing.ts).
    request.trace ??= newTrace();
    const spool = request.asyncSpool ?? undefined;
    const accepted = await this.commit.add({
      organizationId: identity.organizationId,
      userId: identity.user.id,
      instanceId: instance.id,
      callbackUrl: callbackUrl ?? '',
      idempotencyKey: key ?? null,
      request: captureRequest(request, request.trace, spool),
      body: request.asyncBody && request.asyncBody.length > 0 ? request.asyncBody : null,
    });
    if (!accepted.duplicate) metrics.eventsAccepted(instance.elementKey, 1);
    // The job owns its spool file now (a duplicate's job is an earlier one, with its own).
    if (spool && !accepted.duplicate) request.asyncSpool = null;
    return accepted;
  }
}

/**
 * The egress policy's accept-time check, plus one thing it cannot see without DNS: `localhost`
 * and every name under it are loopback by definition (RFC 6761), so they are refused here like
 * 127.0.0.1 (a 400 before anything is stored) instead of being accepted and failing at send time.
 */
export function checkCallbackUrl(egress: EgressPolicy, callbackUrl: string): void {
  if (callbackUrl.length > MAX_CALLBACK_URL) {
    throw invalid(`The callback URL is longer than ${MAX_CALLBACK_URL} characters; use a shorter URL`);
  }
  const url = egress.checkUrl(callbackUrl);
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  if ((host === 'localhost' || host.endsWith('.localhost')) && !egress.checkAddress('127.0.0.1', url.hostname)) {
    throw invalid(
      `The URL host ${url.hostname} is a loopback address, which Ferry does not call; allow it with FERRY_EGRESS_ALLOW (e.g. 127.0.0.1/32,localhost)`,
    );
  }
}

/** The request as the runner will replay it, without secrets, carrying its trace context. */
export function captureRequest(request: FastifyRequest, trace?: TraceContext, spool?: SpooledBody): CapturedRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || DROPPED_HEADERS.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (trace) {
    headers[TRACEPARENT] = formatTraceparent(trace);
    if (trace.tracestate) headers[TRACESTATE] = trace.tracestate;
  }
  return spool ? { method: request.method, url: request.url, headers, spool } : { method: request.method, url: request.url, headers };
}
