/**
 * Turns whatever the AWS SDK throws (S3 service errors, Node socket errors, SDK timeouts) into
 * Ferry's typed domain errors, keeping S3's own text in `providerMessage`.
 *
 * Errors are told apart by S3's error code, the HTTP status and Node's `code` — never by message
 * text. HEAD requests carry no error body, so their 404/403 arrive as "NotFound"/"Unknown" and
 * are classified by status. The secret key never reaches a message: S3 does not echo it, and
 * `redact` scrubs it anyway in case some S3-compatible store does.
 */
import { FerryError, backendFailed, backendTimeout, forbidden, invalid, isFerryError, notFound } from '../../errors.js';
import { ACCESS_KEY, BUCKET_NAME, ENDPOINT, SECRET_KEY } from './settings.js';

/** What the failed call was doing, for the message. */
export interface S3ErrorContext {
  /** Verb phrase such as "read", "list", "copy". */
  operation: string;
  bucket: string;
  /** Ferry path the call was about, when there is one. */
  path?: string;
  /** The backend timeout in force, for the timeout message. */
  timeoutMs: number;
  /** Values that must never appear in a message (the secret key). */
  secrets: string[];
}

interface SdkLikeError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload']);
const BAD_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AuthorizationHeaderMalformed',
]);
const DENIED = new Set(['AccessDenied', 'AllAccessDisabled', 'AccountProblem']);
// Node socket errors meaning the endpoint could not be reached or dropped the connection.
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join('********');
  }
  return out;
}

function describe(e: SdkLikeError, status: number | undefined): string {
  // A Node socket error: its message already names the code and address.
  if (status === undefined && e.code !== undefined && e.message) return e.message;
  const code = e.Code ?? e.name ?? e.code ?? 'Error';
  const text = e.message && e.message !== 'UnknownError' ? e.message : '';
  if (text === '') return status ? `${code} (HTTP ${status})` : code;
  return code === 'Error' || text.startsWith(code) ? text : `${code}: ${text}`;
}

/** Maps any error from an S3 call to a FerryError (FerryErrors pass through unchanged). */
export function mapS3Error(error: unknown, ctx: S3ErrorContext): FerryError {
  if (isFerryError(error)) return error;
  const e = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as SdkLikeError;
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? e.name ?? '';
  const providerMessage = redact(describe(e, status), ctx.secrets);
  const what = ctx.path ? ` '${ctx.path}'` : '';
  const options = { providerMessage, cause: error };

  if (e.code !== undefined && UNREACHABLE.has(e.code)) {
    return backendFailed(
      `Could not ${ctx.operation}${what}: the S3 endpoint could not be reached; check '${ENDPOINT}' and that the store is running.`,
      options,
    );
  }
  if (code === 'TimeoutError' || code === 'AbortError' || e.code === 'ETIMEDOUT' || code === 'RequestTimeout') {
    return backendTimeout(`S3 did not answer within ${ctx.timeoutMs} ms while trying to ${ctx.operation}${what}.`, options);
  }
  if (code === 'NoSuchBucket') {
    return invalid(`The bucket '${ctx.bucket}' does not exist in this S3 store; check '${BUCKET_NAME}'.`, options);
  }
  if (NOT_FOUND.has(code) || status === 404) {
    return notFound(`Nothing exists at${what || ' that path'}.`, options);
  }
  if (BAD_CREDENTIALS.has(code)) {
    return new FerryError(
      'unauthenticated',
      `The S3 store rejected the configured credentials; check '${ACCESS_KEY}' and '${SECRET_KEY}'.`,
      options,
    );
  }
  if (DENIED.has(code) || status === 403) {
    return forbidden(`The S3 store denied access to the bucket '${ctx.bucket}' while trying to ${ctx.operation}${what}.`, options);
  }
  return backendFailed(`S3 failed to ${ctx.operation}${what}.`, options);
}
