/**
 * Rate limits at the HTTP edge, built on one token bucket per key, refilled continuously and
 * holding at most one minute's worth:
 *
 * - `RateLimiter`: requests per organization (FERRY_RATE_LIMIT; default 0 = off — a self-hosted
 *   gateway must not throttle its own tenant below what the node can take). Over the limit a
 *   request is refused with 429 and `Retry-After`. Replayed async jobs are not counted: their
 *   requests were counted when accepted.
 * - `AuthFailureLimiter` (auth-failures.ts): failed authentications per client address, on by
 *   default, so secrets cannot be brute-forced.
 *
 * The buckets live in this process: on a cluster each node limits on its own, so a client may
 * make up to N × the limit across N nodes (README and SECURITY.md say so).
 */
import { FerryError } from '../errors.js';

/** Token buckets, one per key, each refilled at `perMinute` tokens a minute up to `perMinute`. */
export class TokenBuckets<K> {
  private readonly buckets = new Map<K, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    readonly perMinute: number,
    /** Keys tracked at most; full (idle) buckets are forgotten first when it is reached. */
    private readonly maxKeys = 100_000,
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Seconds until the key has a whole token again; 0 when it has one now. */
  wait(key: K, now = Date.now()): number {
    const b = this.refill(key, now);
    if (!b || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  /** Takes one token; returns the seconds to wait instead when the key has none (nothing taken). */
  take(key: K, now = Date.now()): number {
    let b = this.refill(key, now);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.forgetIdle(now);
      b = { tokens: this.perMinute, at: now };
      this.buckets.set(key, b);
    }
    if (b.tokens < 1) return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
    b.tokens -= 1;
    return 0;
  }

  private refill(key: K, now: number): { tokens: number; at: number } | undefined {
    const b = this.buckets.get(key);
    if (!b) return undefined;
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    return b;
  }

  /** Drops buckets that have refilled (they hold nothing a new bucket would not). */
  private forgetIdle(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.perMinute) this.buckets.delete(key);
    }
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}

export class RateLimiter {
  private readonly buckets: TokenBuckets<number>;

  constructor(private readonly perMinute: number) {
    this.buckets = new TokenBuckets(perMinute);
  }

  /** Takes one token for the organization or throws `rate_limited`. */
  take(organizationId: number, now = Date.now()): void {
    if (this.perMinute <= 0) return;
    const retryAfter = this.buckets.take(organizationId, now);
    if (retryAfter > 0) {
      throw new FerryError(
        'rate_limited',
        `Your organization is over its limit of ${this.perMinute} requests per minute (FERRY_RATE_LIMIT); retry after ${retryAfter} s`,
        { retryAfter },
      );
    }
  }
}
