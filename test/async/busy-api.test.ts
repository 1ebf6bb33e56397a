/**
 * FERRY_RUNNER_YIELD (async/busy-api.ts): when the API is saturated — its thread busy with
 * requests queueing — the runner thread pauses, for at most MAX_PAUSE_MS at a time and with at
 * least MIN_RUN_MS of running between pauses; a steady load, idle slow uploads or one stall never
 * pause it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BusyApi, CHECK_MS, MAX_PAUSE_MS, MIN_RUN_MS, WINDOW_MS, type ApiReading } from '../../src/async/busy-api.js';

/** Feeds `busy` readings every CHECK_MS for `ms`, from `start`; returns the pause states seen. */
function feed(busy: BusyApi, start: number, ms: number, reading: (at: number) => Omit<ApiReading, 'at'>): { at: number; paused: boolean }[] {
  const states = [];
  for (let at = start + CHECK_MS; at <= start + ms; at += CHECK_MS) states.push({ at, paused: busy.observe({ at, ...reading(at) }) });
  return states;
}

const SATURATED = { utilization: 0.95, peakInFlight: 32 };

test('a steady load, idle slow uploads and a single stall never pause the runner', () => {
  const busy = new BusyApi(0);
  // 1,000 accepts/s without batches: half busy, one or two in flight.
  assert.ok(feed(busy, 0, 10_000, () => ({ utilization: 0.6, peakInFlight: 2 })).every((s) => !s.paused));
  // 40 uploads trickling in: many in flight, the thread idle.
  assert.ok(feed(busy, 10_000, 5_000, () => ({ utilization: 0.05, peakInFlight: 40 })).every((s) => !s.paused));
  // One 50 ms stall (a GC pause) in a steady load: requests pile up once.
  const stall = feed(busy, 15_000, 5_000, (at) => (at === 17_000 ? { utilization: 1, peakInFlight: 40 } : { utilization: 0.6, peakInFlight: 2 }));
  assert.ok(stall.every((s) => !s.paused));
});

test('a saturated API pauses the runner once the window is full, and a pause ends when the burst does', () => {
  const busy = new BusyApi(0);
  const states = feed(busy, 0, 600, () => SATURATED);
  const first = states.find((s) => s.paused)!;
  assert.ok(first, 'never paused');
  assert.ok(first.at >= Math.max(WINDOW_MS, MIN_RUN_MS), `paused after ${first.at} ms`);
  const after = feed(busy, 600, 200, () => ({ utilization: 0.02, peakInFlight: 0 }));
  assert.equal(after[0].paused, false, 'the first quiet reading resumes the runner');
  assert.ok(after.every((s) => !s.paused));
});

test('under a sustained saturation the runner pauses at most MAX_PAUSE_MS at a time and runs MIN_RUN_MS in between', () => {
  const busy = new BusyApi(0);
  const states = feed(busy, 0, 10_000, () => SATURATED);
  const spans: { paused: boolean; ms: number }[] = [];
  for (let i = 1; i < states.length; i++) {
    const last = spans.at(-1);
    if (last && last.paused === states[i].paused) last.ms += CHECK_MS;
    else spans.push({ paused: states[i].paused, ms: CHECK_MS });
  }
  const whole = spans.slice(1, -1); // the first and last spans are cut by the run's ends
  assert.ok(whole.some((s) => s.paused) && whole.some((s) => !s.paused), JSON.stringify(spans));
  for (const s of whole) {
    if (s.paused) assert.ok(s.ms <= MAX_PAUSE_MS, `a pause of ${s.ms} ms`);
    else assert.ok(s.ms >= MIN_RUN_MS, `a run of only ${s.ms} ms between pauses`);
  }
  const running = states.filter((s) => !s.paused).length / states.length;
  assert.ok(running >= MIN_RUN_MS / (MIN_RUN_MS + MAX_PAUSE_MS) - 0.05, `the runner ran ${Math.round(running * 100)} % of the time`);
});

test('the sampler may stop only after a whole quiet window, never while the runner is paused', () => {
  const busy = new BusyApi(0);
  assert.equal(busy.quiet, false, 'no readings yet');
  feed(busy, 0, 600, () => SATURATED);
  assert.ok(busy.paused);
  assert.equal(busy.quiet, false, 'paused');
  const quiet = feed(busy, 600, WINDOW_MS, () => ({ utilization: 0.02, peakInFlight: 1 }));
  assert.ok(quiet.every((s) => !s.paused));
  assert.equal(busy.quiet, true, 'a whole window below IN_FLIGHT');
  // Restarted after a quiet spell: old readings no longer count, a new window must fill first.
  busy.restart();
  assert.equal(busy.quiet, false);
  const states = feed(busy, 10_000, WINDOW_MS - CHECK_MS, () => SATURATED);
  assert.ok(states.every((s) => !s.paused), 'no pause before a full window of new readings');
});
