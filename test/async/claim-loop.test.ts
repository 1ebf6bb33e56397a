/**
 * ClaimLoop.pause (FERRY_RUNNER_YIELD): while paused no claim starts — wake-ups and polls are
 * kept, not lost — a claim in progress finishes, and the loop claims as soon as it resumes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClaimLoop } from '../../src/claim-loop.js';

const turn = () => new Promise((r) => setTimeout(r, 20));

test('a paused loop starts no claim, keeps its wake-ups, and claims once it resumes', async () => {
  let claims = 0;
  const loop = new ClaimLoop(
    async () => {
      claims++;
      return false;
    },
    async () => 10, // polls every 10 ms
    (e) => assert.fail(String(e)),
  );
  loop.wake();
  await turn();
  const before = claims;
  assert.ok(before >= 1);
  loop.pause(true);
  await turn();
  const paused = claims;
  loop.wake();
  await turn();
  await turn();
  assert.equal(claims, paused, 'no claim while paused, wake-ups and polls included');
  loop.pause(false);
  await turn();
  assert.ok(claims > paused, 'the kept wake-up claims on resume');
  await loop.stop();
});

test('a claim in progress when the loop pauses finishes, and one that filled its slots goes round only after resuming', async () => {
  let claims = 0;
  let release: () => void = () => {};
  const loop = new ClaimLoop(
    async () => {
      claims++;
      if (claims === 1) await new Promise<void>((r) => (release = r));
      return claims <= 2; // the first two fill every slot: more may wait
    },
    async () => 60_000,
    (e) => assert.fail(String(e)),
  );
  loop.wake();
  await turn();
  assert.equal(claims, 1);
  loop.pause(true);
  release();
  await turn();
  assert.equal(claims, 1, 'the full claim did not go round while paused');
  loop.pause(false);
  await turn();
  assert.equal(claims, 3, 'it went round on resume until a claim left slots free');
  await loop.stop();
});
