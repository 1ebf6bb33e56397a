/**
 * The same asynchronous end-to-end tests as ./e2e.test.ts, on the PostgreSQL store (each test
 * server in its own schema). Skips with a one-line reason when PostgreSQL is unreachable.
 */
import { test } from 'node:test';
import { pgSkipReason, pgTestUrl } from '../helpers/postgres.js';

if (await pgTestUrl()) {
  process.env.FERRY_TEST_BACKEND = 'postgres';
  await import('./e2e.test.js');
} else {
  test('e2e on PostgreSQL', { skip: pgSkipReason() }, () => {});
}
