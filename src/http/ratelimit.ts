/**
 * Per-organization rate limit (FERRY_RATE_LIMIT requests per minute): a token bucket per
 * organization, refilled continuously, holding at most one minute's worth. Over the limit a
 * request is refused with 429 and `Retry-After` (seconds until a token is back). Replayed async
 * jobs are not counted: their requests were counted when accepted.
 *
 * The buckets live in this process: on a cluster each node limits on its own, so an
 * organization may make up to N × the limit across N nodes.
 */
import { FerryError } from '../errors.js';

export class RateLimiter {
  private readonly buckets = new Map<number, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(private readonly perMinute: number) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for the organization or throws `rate_limited`. */
  take(organizationId: number, now = Date.now()): void {
    if (this.perMinute <= 0) return;
    let b = this.buckets.get(organizationId);
    if (!b) {
      b = { tokens: this.perMinute, at: now };
      this.buckets.set(organizationId, b);
    }
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (b.tokens < 1) {
      const retryAfter = Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
      throw new FerryError(
        'rate_limited',
        `Your organization is over its limit of ${this.perMinute} requests per minute; retry after ${retryAfter} s`,
        { retryAfter },
      );
    }
    b.tokens -= 1;
  }
}
