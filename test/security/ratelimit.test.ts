import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../../src/http/ratelimit.js';
import { isFerryError } from '../../src/errors.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('rate limits per organization', () => {
  it('a bucket refills continuously and says when to come back', () => {
    const limiter = new RateLimiter(60); // one per second
    const t0 = 1_000_000;
    for (let i = 0; i < 60; i++) limiter.take(1, t0);
    assert.throws(
      () => limiter.take(1, t0),
      (e: unknown) => isFerryError(e, 'rate_limited') && (e as any).retryAfter === 1,
    );
    limiter.take(2, t0); // another organization is not affected
    limiter.take(1, t0 + 1000); // one second later one token is back
    assert.throws(() => limiter.take(1, t0 + 1000));
  });

  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ FERRY_RATE_LIMIT: '5' });
  });
  after(async () => srv.close());

  it('over the limit answers 429 with Retry-After and the error body', async () => {
    const statuses: number[] = [];
    let limited: Response | null = null;
    for (let i = 0; i < 7; i++) {
      const res = await srv.api('/elements');
      statuses.push(res.status);
      if (res.status === 429) limited = res;
      else await res.arrayBuffer();
    }
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
    assert.ok(limited, `expected a 429 among ${statuses}`);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    const body: any = await limited.json();
    assert.equal(body.requestId, limited.headers.get('elements-request-id'));
    assert.match(body.message, /5 requests per minute/);
  });

  it('unauthenticated requests are refused before they count', async () => {
    const res = await srv.api('/elements', { headers: { authorization: 'User nope, Organization nope' } });
    assert.equal(res.status, 401);
  });
});
