/**
 * The one error the client throws for a failed call: Ferry's error body (`{requestId, message,
 * providerMessage}`) with the HTTP status, or status 0 when no answer came (network failure,
 * waitForEvent's timeout).
 */
export class FerryError extends Error {
  override readonly name = 'FerryError';
  constructor(
    /** The HTTP status; 0 when there was no HTTP answer. */
    readonly status: number,
    message: string,
    /** Ferry's request id (the Elements-Request-Id header): quote it when reporting a problem. */
    readonly requestId: string | null = null,
    /** The backend's own message, when the backend refused. */
    readonly providerMessage: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
