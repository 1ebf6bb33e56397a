import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { RateLimiter } from '../../src/http/ratelimit.js';
import { AuthFailureLimiter } from '../../src/http/auth-failures.js';
import { loadConfig } from '../../src/config.js';
import { isFerryError } from '../../src/errors.js';
import { startTestServer, USER_SECRET, type TestServer } from '../helpers/server.js';

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

describe('defaults: no per-organization limit, a failed-authentication limit per address', () => {
  it('FERRY_RATE_LIMIT defaults to 0 (off) and FERRY_AUTH_FAILURE_LIMIT to 20', () => {
    const config = loadConfig({});
    assert.equal(config.rateLimitPerMinute, 0);
    assert.equal(config.authFailureLimitPerMinute, 20);
  });

  it('the failure bucket refills: an address over its limit may try again a few seconds later', () => {
    const limiter = new AuthFailureLimiter(20); // one failure every 3 s
    const t0 = 1_000_000;
    for (let i = 0; i < 20; i++) limiter.record('10.0.0.1', t0);
    assert.throws(
      () => limiter.check('10.0.0.1', t0),
      (e: unknown) => isFerryError(e, 'rate_limited') && (e as any).retryAfter === 3,
    );
    limiter.check('10.0.0.2', t0); // another address is not affected
    limiter.check('10.0.0.1', t0 + 3000);
  });

  let srv: TestServer;
  let hubAuth = '';
  before(async () => {
    // Both settings at their defaults (the helper turns the failure limit off for other tests).
    srv = await startTestServer({ FERRY_RATE_LIMIT: undefined, FERRY_AUTH_FAILURE_LIMIT: undefined } as unknown as Record<string, string>);
    hubAuth = (await srv.instance('localfs', { root: 'rl' }, 'rl')).auth;
  });
  after(async () => srv.close());

  it('with the defaults, a burst of 300 requests of one organization is not throttled', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 300 }, async () => {
        const res = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: hubAuth } });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    assert.deepEqual([...new Set(statuses)], [200]);
  });

  it('20 failed authentications from one address answer 401; after them that address gets 429 with Retry-After, right secret or wrong', async () => {
    const other = new Agent({ localAddress: '127.0.0.2' });
    try {
      const first = await request(`${srv.base}/hubs/documents/ping`, { headers: { authorization: hubAuth }, dispatcher: other });
      await first.body.text();
      if (first.statusCode !== 200) throw new Error('127.0.0.2 unusable');
    } catch (e) {
      await other.close();
      throw e;
    }
    const wrongHub = `User ${USER_SECRET}, Element not-a-token`;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      // Platform and hub routes count alike.
      const res =
        i % 2 === 0
          ? await srv.api('/instances', { headers: { authorization: 'User guess, Organization guess' } })
          : await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: wrongHub } });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    assert.deepEqual([...new Set(statuses)], [401]);

    const limited = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: wrongHub } });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    const body: any = await limited.json();
    assert.match(body.message, /FERRY_AUTH_FAILURE_LIMIT/);
    assert.equal(body.requestId, limited.headers.get('elements-request-id'));

    // While over the limit, even the right secret is refused from that address: no guessing on.
    const right = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: hubAuth } });
    assert.equal(right.status, 429);
    await right.arrayBuffer();
    // A route without secrets still answers.
    const open = await fetch(`${srv.base}/docs/json`);
    assert.equal(open.status, 200);
    await open.arrayBuffer();

    // Another client address is not affected.
    try {
      const res = await request(`${srv.base}/hubs/documents/ping`, { headers: { authorization: hubAuth }, dispatcher: other });
      assert.equal(res.statusCode, 200);
      await res.body.text();
    } finally {
      await other.close();
    }
  });
});
