/**
 * The SIGKILL ledger test of ./crash.test.ts with the `ferry serve` children on the PostgreSQL store
 * (FERRY_TEST_BACKEND=postgres: each data dir its own schema, kept across restarts). Skips
 * with a one-line reason when PostgreSQL is unreachable.
 */
import { test } from 'node:test';
import { pgSkipReason, pgTestUrl } from '../helpers/postgres.js';

if (await pgTestUrl()) {
  process.env.FERRY_TEST_BACKEND = 'postgres';
  await import('./crash.test.js');
} else {
  test('crash on PostgreSQL', { skip: pgSkipReason() }, () => {});
}
