/**
 * The same sync temp-file tests as ./sync-temps.test.ts, with the `ferry serve` children on the
 * PostgreSQL store (the sweep at start looks instances up there). Skips with a one-line reason
 * when PostgreSQL is unreachable.
 */
import { test } from 'node:test';
import { pgSkipReason, pgTestUrl } from '../helpers/postgres.js';

if (await pgTestUrl()) {
  process.env.FERRY_TEST_BACKEND = 'postgres';
  await import('./sync-temps.test.js');
} else {
  test('sync temp files on PostgreSQL', { skip: pgSkipReason() }, () => {});
}
