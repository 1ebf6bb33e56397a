/**
 * The same asynchronous end-to-end tests as ./delivery-policy.test.ts, on the PostgreSQL store (each test
 * server in its own schema). Skips with a one-line reason when PostgreSQL is unreachable.
 */
import { test } from 'node:test';
import { pgSkipReason, pgTestUrl } from '../helpers/postgres.js';

if (await pgTestUrl()) {
  process.env.FERRY_TEST_BACKEND = 'postgres';
  await import('./delivery-policy.test.js');
} else {
  test('delivery-policy on PostgreSQL', { skip: pgSkipReason() }, () => {});
}
