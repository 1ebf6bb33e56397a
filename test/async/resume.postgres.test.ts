/**
 * The crash-recovery tests of ./resume.test.ts (at the level its ON_POSTGRES note says) with
 * the `ferry serve` children on the PostgreSQL store (FERRY_TEST_BACKEND=postgres: each data
 * dir its own schema, kept across restarts). Skips with a one-line reason when PostgreSQL is
 * unreachable.
 */
import { test } from 'node:test';
import { pgSkipReason, pgTestUrl } from '../helpers/postgres.js';

if (await pgTestUrl()) {
  process.env.FERRY_TEST_BACKEND = 'postgres';
  await import('./resume.test.js');
} else {
  test('resume on PostgreSQL', { skip: pgSkipReason() }, () => {});
}
