import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { loadConfig, SETTINGS } from '../src/config.js';

test('the README configuration table lists every setting with its default', () => {
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const s of SETTINGS) {
    assert.ok(readme.includes(`| \`${s.env}\` | \`${s.default}\` |`), `README lacks the row of ${s.env}`);
  }
});

test('every FERRY_ variable the code reads is a documented setting', () => {
  const documented = new Set(SETTINGS.map((s) => s.env));
  const source = fs.readFileSync(new URL('../../src/config.ts', import.meta.url), 'utf8');
  for (const m of source.matchAll(/env\.(FERRY_[A-Z_]+)/g)) assert.ok(documented.has(m[1]), `${m[1]} is undocumented`);
});

test('bad settings are refused with the variable named', () => {
  assert.throws(() => loadConfig({ PORT: 'abc' }), /PORT/);
  assert.throws(() => loadConfig({ FERRY_DURABILITY: 'sometimes' }), /FERRY_DURABILITY/);
  assert.throws(() => loadConfig({ FERRY_DATABASE_URL: 'mysql://x' }), /FERRY_DATABASE_URL/);
  assert.throws(() => loadConfig({ FERRY_RETRY_SCHEDULE: '1,-2' }), /FERRY_RETRY_SCHEDULE/);
  assert.throws(() => loadConfig({ FERRY_RUNNER_NICE: '20' }), /FERRY_RUNNER_NICE must be an integer from 0 to 19, got "20"/);
  assert.throws(() => loadConfig({ FERRY_RUNNER_NICE: '-1' }), /FERRY_RUNNER_NICE/);
  assert.equal(loadConfig({ FERRY_RUNNER_NICE: '0' }).runnerNice, 0);
});

test('defaults', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.durability, 'normal');
  assert.equal(c.deliveryRetrySchedule.length, 9);
  assert.equal(c.deliveryRetrySchedule[0], 4000);
  assert.deepEqual(c.egressAllow, []);
  assert.equal(c.keyRotationOverlapMs, 24 * 3600 * 1000, 'a replaced signature key is sent for 24 h');
  assert.equal(loadConfig({ FERRY_KEY_ROTATION_OVERLAP: '0' }).keyRotationOverlapMs, 0);
  assert.throws(() => loadConfig({ FERRY_KEY_ROTATION_OVERLAP: '-1' }), /FERRY_KEY_ROTATION_OVERLAP/);
});
