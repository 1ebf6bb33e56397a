/**
 * The durable-cancel crash test of ./cancel-crash.test.ts with the `ferry serve` children on
 * the PostgreSQL store (FERRY_TEST_BACKEND=postgres). Skips with a one-line reason when
 * PostgreSQL is unreachable.
 */
import { test } from 'node:test';
import { pgSkipReason, pgTestUrl } from '../helpers/postgres.js';

if (await pgTestUrl()) {
  process.env.FERRY_TEST_BACKEND = 'postgres';
  await import('./cancel-crash.test.js');
} else {
  test('cancel-crash on PostgreSQL', { skip: pgSkipReason() }, () => {});
}
