/**
 * When the API is saturated, the runner thread pauses (FERRY_RUNNER_YIELD): a burst of requests
 * is answered at full speed while its jobs wait, stored, for the burst to end. The runner thread
 * is niced already (FERRY_RUNNER_NICE), but that is not enough: while it runs, the API thread
 * still shares the write lock, V8's helper threads and its own handoff messages with it, and
 * accepted about half as many requests per second in a burst as with the thread paused.
 *
 * Saturated means, over the last WINDOW_MS: the API thread's event loop at least
 * UTILIZATION busy, and at least IN_FLIGHT requests in flight at once on average (the most at
 * once between two readings) — requests are queueing. Utilization alone misleads: a thread that
 * shares the CPU with the jobs reads less busy than it is, and one accepting a steady 1,000/s
 * without batches reads half busy with one or two requests in flight.
 *
 * A pause ends at the first reading that is no longer saturated, or after MAX_PAUSE_MS, and is
 * followed by MIN_RUN_MS of running at least: under a sustained load the jobs still get a fifth
 * of the time, and a pause never outlasts a second.
 *
 * Readings are taken only while they can matter: the sampler starts when IN_FLIGHT requests are
 * in flight at once (below that the API cannot be saturated) and stops once a whole window has
 * passed without a pause and without that many (`quiet`). An API answering a trickle, or
 * nothing, so never wakes for it (before, it read every CHECK_MS whatever the load).
 */
export const CHECK_MS = 50;
export const WINDOW_MS = 200;
export const UTILIZATION = 0.5;
export const IN_FLIGHT = 16;
export const MAX_PAUSE_MS = 1000;
export const MIN_RUN_MS = 250;

/** One reading of the API thread, every CHECK_MS. */
export interface ApiReading {
  /** Milliseconds, monotonic. */
  at: number;
  /** Event loop utilization since the previous reading, 0–1. */
  utilization: number;
  /** The most requests in flight at once since the previous reading. */
  peakInFlight: number;
}

export class BusyApi {
  private readonly window: ApiReading[] = [];
  private since: number;
  paused = false;

  constructor(start: number) {
    this.since = start;
  }

  /** The sampler starts again after a quiet spell: readings from before it no longer count. */
  restart(): void {
    this.window.length = 0;
  }

  /**
   * Whether the sampler may stop: not paused, and a whole window of readings none of which saw
   * IN_FLIGHT requests at once.
   */
  get quiet(): boolean {
    return !this.paused && this.window.length * CHECK_MS >= WINDOW_MS && this.window.every((r) => r.peakInFlight < IN_FLIGHT);
  }

  /** Takes a reading; returns whether the runner should be paused now. */
  observe(reading: ApiReading): boolean {
    this.window.push(reading);
    while (this.window.length > WINDOW_MS / CHECK_MS) this.window.shift();
    const next = this.paused
      ? saturated([reading]) && reading.at - this.since < MAX_PAUSE_MS
      : reading.at - this.since >= MIN_RUN_MS && this.window.length * CHECK_MS >= WINDOW_MS && saturated(this.window);
    if (next !== this.paused) {
      this.paused = next;
      this.since = reading.at;
    }
    return this.paused;
  }
}

function saturated(readings: ApiReading[]): boolean {
  const mean = (f: (r: ApiReading) => number) => readings.reduce((sum, r) => sum + f(r), 0) / readings.length;
  return mean((r) => r.utilization) >= UTILIZATION && mean((r) => r.peakInFlight) >= IN_FLIGHT;
}
