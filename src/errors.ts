/**
 * Typed domain errors. Domain code (store, elements, documents service, async pipeline) throws
 * these and never knows HTTP status codes; `http/errors.ts` maps each kind to a status in one
 * place. `message` is shown to the caller and must say what is wrong and how to fix it;
 * `providerMessage` carries a backend's own text (S3, SFTP) when there is one. Neither may
 * ever contain a secret.
 */

/** Every kind of failure Ferry tells apart. */
export type ErrorKind =
  | 'invalid' // bad or missing parameter
  | 'unauthenticated' // bad or missing secret
  | 'forbidden' // disabled instance, not allowed
  | 'not_found'
  | 'method_not_allowed' // the path exists, for other methods
  | 'conflict' // already exists
  | 'too_large'
  | 'unsupported_media'
  | 'rate_limited'
  | 'unavailable' // Ferry itself cannot take the request now (disk full, database busy)
  | 'backend' // the backend storage failed
  | 'backend_timeout' // the backend storage did not answer in time
  | 'cancelled'; // the job was stopped by a cancel (or a drain) before it finished

export interface FerryErrorOptions {
  providerMessage?: string;
  /** Seconds after which the caller may retry (rate limits, unavailability). */
  retryAfter?: number;
  cause?: unknown;
}

export class FerryError extends Error {
  readonly kind: ErrorKind;
  readonly providerMessage?: string;
  readonly retryAfter?: number;

  constructor(kind: ErrorKind, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.kind = kind;
    this.providerMessage = options.providerMessage;
    this.retryAfter = options.retryAfter;
  }
}

export const invalid = (message: string, o?: FerryErrorOptions) => new FerryError('invalid', message, o);
export const unauthenticated = (message: string) => new FerryError('unauthenticated', message);
export const forbidden = (message: string, o?: FerryErrorOptions) => new FerryError('forbidden', message, o);
export const notFound = (message: string, o?: FerryErrorOptions) => new FerryError('not_found', message, o);
export const conflict = (message: string, o?: FerryErrorOptions) => new FerryError('conflict', message, o);
export const tooLarge = (message: string) => new FerryError('too_large', message);
export const backendFailed = (message: string, o?: FerryErrorOptions) => new FerryError('backend', message, o);
export const backendTimeout = (message: string, o?: FerryErrorOptions) =>
  new FerryError('backend_timeout', message, o);
/** A job stopped at a safe point because its signal was aborted (cancel, drain). */
export const cancelled = (message = 'The job was stopped before it finished (cancelled)') => new FerryError('cancelled', message);
export const unavailable = (message: string, o?: FerryErrorOptions) => new FerryError('unavailable', message, o);

export function isFerryError(e: unknown, kind?: ErrorKind): e is FerryError {
  return e instanceof FerryError && (kind === undefined || e.kind === kind);
}
