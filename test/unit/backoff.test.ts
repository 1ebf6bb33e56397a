/** Retry schedule with jitter, and Retry-After parsing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RETRY_AFTER_MS, parseRetryAfter, retryDelayMs } from '../../src/async/backoff.js';

const schedule = [4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144].map((s) => s * 1000);

test('attempt x reads entry x of the schedule, null once exhausted', () => {
  assert.equal(retryDelayMs(1, schedule, 0), 4000);
  assert.equal(retryDelayMs(2, schedule, 0), 16000);
  assert.equal(retryDelayMs(9, schedule, 0), 262144000);
  assert.equal(retryDelayMs(10, schedule, 0), null);
  assert.equal(retryDelayMs(1, [], 0.2), null);
});

test('jitter spreads ±jitter around the entry', () => {
  assert.equal(retryDelayMs(1, schedule, 0.2, () => 0), 3200); // lowest
  assert.equal(retryDelayMs(1, schedule, 0.2, () => 0.5), 4000); // centre
  assert.equal(retryDelayMs(1, schedule, 0.2, () => 0.999999), 4800); // highest (rounded)
  for (let i = 0; i < 1000; i++) {
    const d = retryDelayMs(3, schedule, 0.2)!;
    assert.ok(d >= 51200 && d <= 76800, `${d} outside ±20 % of 64 s`);
  }
});

test('with the default schedule and ±20 % jitter retries stay in order', () => {
  for (let x = 1; x < schedule.length; x++) {
    assert.ok(retryDelayMs(x, schedule, 0.2, () => 0.999999)! < retryDelayMs(x + 1, schedule, 0.2, () => 0)!);
  }
});

test('bad arguments are refused', () => {
  assert.throws(() => retryDelayMs(0, schedule, 0.2), RangeError);
  assert.throws(() => retryDelayMs(1.5, schedule, 0.2), RangeError);
  assert.throws(() => retryDelayMs(1, schedule, 1), RangeError);
  assert.throws(() => retryDelayMs(1, schedule, -0.1), RangeError);
});

const now = new Date('2024-05-01T12:00:00Z');

test('Retry-After in seconds', () => {
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('999999999', now), MAX_RETRY_AFTER_MS);
  assert.equal(MAX_RETRY_AFTER_MS, 86_400_000);
});

test('Retry-After as an HTTP-date, in all three forms', () => {
  assert.equal(parseRetryAfter('Wed, 01 May 2024 12:01:30 GMT', now), 90_000);
  assert.equal(parseRetryAfter('Wednesday, 01-May-24 12:00:10 GMT', now), 10_000);
  assert.equal(parseRetryAfter('Wed May  1 12:00:05 2024', now), 5_000);
  assert.equal(parseRetryAfter('Tue, 30 Apr 2024 12:00:00 GMT', now), 0); // past → now
  assert.equal(parseRetryAfter('Fri, 01 May 2026 12:00:00 GMT', now), MAX_RETRY_AFTER_MS); // capped
});

test('absent or garbage Retry-After is null', () => {
  for (const v of [undefined, '', '  ', '-5', '1.5', 'soon', '1e3', '0x10', 'Wed, 31 Feb 2024 12:00:00 GMT', 'Wed, 01 Foo 2024 12:00:00 GMT', '2024-05-01T12:01:00Z', '1']) {
    const expected = v === '1' ? 1000 : null; // "1" is a delay of one second, not a date
    assert.equal(parseRetryAfter(v, now), expected, `Retry-After ${JSON.stringify(v)}`);
  }
});
