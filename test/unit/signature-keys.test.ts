/**
 * Signature key rotation bookkeeping (src/instances/signature-keys.ts): which previous keys are
 * kept, for how long, and which keys sign at a given moment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RETIRED_KEYS, keysAt, rotateKeys } from '../../src/instances/signature-keys.js';

// A stand-in for the master key: reversible and visibly "sealed".
const crypto = { seal: (k: string) => `sealed:${k}`, open: (k: string) => k.replace(/^sealed:/, '') };
const t0 = new Date('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;

test('a new key keeps the previous one for the overlap; the same key changes nothing', () => {
  assert.equal(rotateKeys('a', 'a', [], t0, HOUR, crypto), undefined);
  assert.deepEqual(rotateKeys('a', 'b', [], t0, HOUR, crypto), [{ key: 'sealed:a', until: new Date(t0.getTime() + HOUR) }]);
  assert.deepEqual(rotateKeys(undefined, 'b', [], t0, HOUR, crypto), [], 'a first key retires nothing');
  assert.deepEqual(rotateKeys('a', 'b', [], t0, 0, crypto), [], 'overlap 0 switches at once');
});

test('removing the key forgets every previous key; rotating back drops the key from the retired list', () => {
  const retired = [{ key: 'sealed:a', until: new Date(t0.getTime() + HOUR) }];
  assert.deepEqual(rotateKeys('b', undefined, retired, t0, HOUR, crypto), []);
  assert.deepEqual(rotateKeys('b', 'a', retired, t0, HOUR, crypto), [{ key: 'sealed:b', until: new Date(t0.getTime() + HOUR) }]);
});

test('several rotations keep each previous key for its own overlap, newest first, expired ones dropped, at most MAX_RETIRED_KEYS', () => {
  let retired = rotateKeys('a', 'b', [], t0, HOUR, crypto)!;
  retired = rotateKeys('b', 'c', retired, new Date(t0.getTime() + HOUR / 2), HOUR, crypto)!;
  assert.deepEqual(retired.map((k) => k.key), ['sealed:b', 'sealed:a']);
  retired = rotateKeys('c', 'd', retired, new Date(t0.getTime() + HOUR + 1), HOUR, crypto)!;
  assert.deepEqual(retired.map((k) => k.key), ['sealed:c', 'sealed:b'], 'a expired');
  let many = retired;
  for (let i = 0; i < 10; i++) many = rotateKeys(`k${i}`, `k${i + 1}`, many, t0, HOUR, crypto)!;
  assert.equal(many.length, MAX_RETIRED_KEYS);
});

test('keysAt: the current key first, then previous keys until their overlap ends; nothing without a current key', () => {
  const keys = { current: 'c', retired: [{ key: 'b', until: 2000 }, { key: 'a', until: 1000 }] };
  assert.deepEqual(keysAt(keys, 500), ['c', 'b', 'a']);
  assert.deepEqual(keysAt(keys, 1000), ['c', 'b']);
  assert.deepEqual(keysAt(keys, 2000), ['c']);
  assert.deepEqual(keysAt({ current: undefined, retired: keys.retired }, 0), []);
});
