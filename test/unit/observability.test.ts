/**
 * Pure logic of observability/: W3C traceparent parsing and continuation, and the readiness
 * verdict (a stuck runner, a store that does not answer or fails, a schema behind, draining).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { continueTrace, newTrace, parseTraceparent } from '../../src/observability/tracing.js';
import { readiness, type ReadinessInput } from '../../src/observability/readiness.js';

const VALID = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('traceparent: valid ones parse, invalid ones are ignored (a fresh trace starts)', () => {
  assert.deepEqual(parseTraceparent(VALID, 'a=1'), {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    parentId: 'b7ad6b7169203331',
    flags: '01',
    tracestate: 'a=1',
  });
  assert.equal(parseTraceparent(VALID.toUpperCase())?.traceId, '0af7651916cd43dd8448eb211c80319c');
  for (const bad of [
    undefined,
    '',
    'garbage',
    '00-00000000000000000000000000000000-b7ad6b7169203331-01', // zero trace id
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', // zero span id
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', // version ff
    VALID + '-extra', // version 00 has four fields
    '00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01', // short trace id
  ]) {
    assert.equal(parseTraceparent(bad), null, String(bad));
  }
  assert.equal(parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future')?.flags, '01', 'a later version may add fields');
  assert.equal(parseTraceparent(VALID, 'x'.repeat(600))?.tracestate, undefined, 'an over-long tracestate is dropped');
});

test('a webhook continues the trace: same trace id, new span id, tracestate passed on', () => {
  const headers = continueTrace(VALID, 'v=1');
  const [version, traceId, spanId, flags] = headers.traceparent.split('-');
  assert.deepEqual([version, traceId, flags], ['00', '0af7651916cd43dd8448eb211c80319c', '01']);
  assert.match(spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(spanId, 'b7ad6b7169203331');
  assert.equal(headers.tracestate, 'v=1');
  assert.deepEqual(continueTrace(null, null), {}, 'nothing stored: no trace headers');
  const fresh = newTrace();
  assert.match(fresh.traceId, /^[0-9a-f]{32}$/);
  assert.notEqual(newTrace().traceId, fresh.traceId);
});

test('fresh trace and span ids are well formed and never repeat, across many refills of the random pool', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const t = newTrace();
    assert.match(t.traceId, /^[0-9a-f]{32}$/);
    assert.match(t.parentId, /^[0-9a-f]{16}$/);
    assert.equal(t.flags, '01');
    assert.ok(parseTraceparent(`00-${t.traceId}-${t.parentId}-01`), 'a valid traceparent');
    seen.add(t.traceId).add(t.parentId);
  }
  assert.equal(seen.size, 40_000, 'a trace or span id came out twice');
  // Continuing a trace draws a new span id each time.
  const spans = new Set(Array.from({ length: 1000 }, () => continueTrace(`00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`, null).traceparent.split('-')[2]));
  assert.equal(spans.size, 1000);
});

function input(over: Partial<ReadinessInput> = {}): ReadinessInput {
  return {
    schema: async () => ({ applied: 6, required: 6 }),
    runner: async () => ({ lastProgressAt: 0, running: 0, backlog: false }),
    draining: () => false,
    stallMs: 60_000,
    ...over,
  };
}

test('readiness: every check named; an idle runner is ready however long it slept', async () => {
  assert.deepEqual(await readiness(input(), () => 10_000_000), {
    ready: true,
    checks: { store: 'ok', migrations: 'ok', runner: 'ok', drain: 'ok' },
  });
});

test('readiness: a runner with work and no progress, a slow or failing store, a schema behind, a drain', async () => {
  const stuck = await readiness(input({ runner: async () => ({ lastProgressAt: 0, running: 2, backlog: false }) }), () => 95_000);
  assert.equal(stuck.ready, false);
  assert.equal(stuck.checks.runner, 'no progress for 95 s with jobs to run');
  const slow = await readiness(input({ schema: () => new Promise(() => {}) }));
  assert.equal(slow.ready, false);
  assert.deepEqual([slow.checks.store, slow.checks.migrations], ['no answer within 1 s', 'unknown (the store did not answer)']);
  const failing = await readiness(input({ schema: async () => Promise.reject(new Error('password=hunter2')) }));
  assert.equal(failing.checks.store, 'the query failed');
  assert.ok(!JSON.stringify(failing).includes('hunter2'), 'no error text (it may hold configuration) in the answer');
  const behind = await readiness(input({ schema: async () => ({ applied: 5, required: 6 }) }));
  assert.equal(behind.checks.migrations, "the store's schema is at version 5, this Ferry needs 6");
  const draining = await readiness(input({ draining: () => true, runner: undefined }));
  assert.deepEqual(draining, { ready: false, checks: { store: 'ok', migrations: 'ok', drain: 'draining: this node is stopping' } });
});
