/**
 * Brute-force protection: failed authentications per client address (FERRY_AUTH_FAILURE_LIMIT
 * per minute, default 20; 0 = off). Each 401 takes a token from the address's bucket; while the
 * bucket is empty every request from that address that needs a secret is refused with 429 and
 * `Retry-After` before its secret is even looked at — right or wrong, so guessing cannot go on.
 * The address is the TCP peer: behind a reverse proxy all clients share the proxy's address.
 * Counters are per node (see ratelimit.ts).
 */
import { FerryError, isFerryError } from '../errors.js';
import { TokenBuckets } from './ratelimit.js';

export class AuthFailureLimiter {
  private readonly buckets: TokenBuckets<string>;

  constructor(private readonly perMinute: number) {
    this.buckets = new TokenBuckets(perMinute);
  }

  /** Throws `rate_limited` while the address is over its failure limit. */
  check(address: string, now = Date.now()): void {
    if (this.perMinute <= 0) return;
    const retryAfter = this.buckets.wait(address, now);
    if (retryAfter > 0) throw this.refusal(retryAfter);
  }

  /**
   * Runs an authentication for a client address: refused at once while the address is over its
   * limit; a failure (`unauthenticated`) is counted and still answered 401 — the first
   * FERRY_AUTH_FAILURE_LIMIT failures of a minute are, the attempts after them get 429.
   */
  async guard<T>(address: string, authenticate: () => Promise<T>): Promise<T> {
    this.check(address);
    try {
      return await authenticate();
    } catch (e) {
      if (isFerryError(e, 'unauthenticated')) this.record(address);
      throw e;
    }
  }

  /** Counts one failed authentication of the address. */
  record(address: string, now = Date.now()): void {
    if (this.perMinute > 0) this.buckets.take(address, now);
  }

  private refusal(retryAfter: number): FerryError {
    return new FerryError(
      'rate_limited',
      `Too many failed authentications from your address (more than ${this.perMinute} a minute, FERRY_AUTH_FAILURE_LIMIT); check the secrets in your Authorization header and retry after ${retryAfter} s`,
      { retryAfter },
    );
  }
}
