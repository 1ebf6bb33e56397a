/**
 * One webhook delivery attempt (DESIGN §1.5): POST the signed body to the callback URL through
 * the egress dispatcher and classify what happened. It never throws; the sender records the
 * outcome and decides what comes next (schedule, `Retry-After`, failure policy).
 *
 * - 2xx → `delivered`; 410 Gone → `gone` (stop retrying this URL); anything else → `retry`:
 *   3xx (redirects are never followed — a receiver cannot bounce Ferry to another host), other
 *   4xx and 5xx, timeouts, connection errors and egress refusals. `Retry-After` is parsed from any
 *   non-2xx answer.
 * - The whole attempt — connect, send, response head and body — is bounded by `timeoutMs`. At most
 *   `maxResponseBytes` of the response body are read (the body is not used; reading a small one
 *   lets the connection be reused), then the stream is destroyed, so a receiver sending a huge
 *   body or trickling bytes forever cannot hold a delivery slot. Once the status line has arrived
 *   the outcome is fixed: a 2xx whose body never ends still counts as delivered.
 * - `error` is a short phrase for the delivery log. It never contains headers, the body or the
 *   URL (which may carry a token in its query).
 */
import { request, type Dispatcher } from 'undici';
import { isFerryError } from '../errors.js';
import { parseRetryAfter } from './backoff.js';

/** What one attempt came to. `statusCode` is set whenever the receiver answered. */
export interface DeliveryOutcome {
  kind: 'delivered' | 'retry' | 'gone';
  statusCode?: number;
  error?: string;
  /** The receiver's `Retry-After`, in milliseconds (capped at 24 h), on a non-2xx answer. */
  retryAfterMs?: number;
  durationMs: number;
  /**
   * For metrics: delivered (2xx); refused (connection refused, or the egress policy refused the
   * address); timeout (the attempt's deadline passed); failed (any other answer or error).
   */
  result: 'delivered' | 'failed' | 'timeout' | 'refused';
}

export interface DeliveryTarget {
  url: string;
  /** The exact string that was signed. */
  body: string;
  /** From `signNotification`. */
  headers: Record<string, string>;
}

export interface DeliveryOptions {
  /** The egress policy's Agent (`EgressPolicy.dispatcher()`); shared so keep-alive pools are. */
  dispatcher: Dispatcher;
  /** Bound on the whole attempt, response body included. */
  timeoutMs: number;
  /** Response bytes read before the rest is discarded; default 64 KiB. */
  maxResponseBytes?: number;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;

const USER_AGENT = 'Ferry-Webhooks/1';

const ERROR_PHRASES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by receiver',
  EPIPE: 'connection closed by receiver',
  UND_ERR_SOCKET: 'connection closed by receiver',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connect timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no response in time',
  UND_ERR_BODY_TIMEOUT: 'response body stalled',
  UND_ERR_INVALID_ARG: 'invalid request (bad URL?)',
  HPE_INVALID_CONSTANT: 'receiver answered with invalid HTTP',
};

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.code === 'string') return e.code;
  // Happy-eyeballs failures come as an AggregateError of one error per address tried.
  if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  return e.cause === undefined ? undefined : errorCode(e.cause);
}

/** A short, secret-free phrase for a failed request. */
function describe(err: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `timed out after ${timeoutMs} ms`;
  if (isFerryError(err, 'forbidden')) return err.message; // egress refusal: names host and range
  const code = errorCode(err);
  if (code === undefined) return 'request failed';
  if (ERROR_PHRASES[code]) return ERROR_PHRASES[code];
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL')) return `TLS error (${code})`;
  return `request failed (${code})`;
}

function classify(statusCode: number): DeliveryOutcome['kind'] {
  if (statusCode >= 200 && statusCode < 300) return 'delivered';
  return statusCode === 410 ? 'gone' : 'retry';
}

/** Reads up to `limit` bytes of a response body, then drops the rest by destroying the stream. */
async function drain(body: Dispatcher.ResponseData['body'], limit: number): Promise<void> {
  let read = 0;
  try {
    for await (const chunk of body) {
      read += (chunk as Buffer).length;
      if (read >= limit) break; // leaving the loop destroys the stream and its socket
    }
  } catch {
    // The attempt's deadline or the receiver cut the body short; the status already decided.
  } finally {
    if (!body.destroyed) body.destroy();
  }
}

/** Makes one delivery attempt. Never throws. */
export async function deliver(target: DeliveryTarget, options: DeliveryOptions): Promise<DeliveryOutcome> {
  const started = performance.now();
  const durationMs = () => Math.round(performance.now() - started);
  const { timeoutMs } = options;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    let response: Dispatcher.ResponseData;
    try {
      const headers = { 'user-agent': USER_AGENT, ...target.headers };
      response = await request(target.url, {
        method: 'POST',
        body: target.body,
        headers,
        dispatcher: options.dispatcher,
        signal: controller.signal,
        // The attempt's deadline is the abort above; undici's own timers are only a backstop,
        // later, so a hanging receiver is always reported the same way ("timed out after …").
        headersTimeout: timeoutMs + 1000,
        bodyTimeout: timeoutMs + 1000,
      });
    } catch (err) {
      const timedOut = controller.signal.aborted;
      const refused = isFerryError(err, 'forbidden') || errorCode(err) === 'ECONNREFUSED';
      const result = timedOut ? 'timeout' : refused ? 'refused' : 'failed';
      return { kind: 'retry', error: describe(err, timedOut, timeoutMs), durationMs: durationMs(), result };
    }
    const { statusCode } = response;
    const kind = classify(statusCode);
    const outcome: DeliveryOutcome = { kind, statusCode, durationMs: 0, result: kind === 'delivered' ? 'delivered' : 'failed' };
    if (kind !== 'delivered') {
      const raw = response.headers['retry-after'];
      const retryAfterMs = parseRetryAfter(Array.isArray(raw) ? raw[0] : raw, new Date());
      if (retryAfterMs !== null) outcome.retryAfterMs = retryAfterMs;
      outcome.error = `receiver answered ${statusCode}`;
    }
    await drain(response.body, options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
    outcome.durationMs = durationMs();
    return outcome;
  } finally {
    clearTimeout(timer);
  }
}
