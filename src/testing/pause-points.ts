/**
 * Deterministic pause points for the cancellation tests (issue 16): `FERRY_TEST_PAUSE=<point>[:<n>]`
 * makes every job stop at the named point from its n-th pass on (default: the first), and wait
 * there until its signal is aborted (a cancel) or the test releases it (`releasePausePoints`) —
 * so a test can cancel, or watch, a job that is certainly mid-way, without timing. Counted per job (event id), on whichever thread passes the point.
 * Unset (always, outside tests), a pass costs one environment read. Never documented as a
 * setting: it exists to prove cancellation.
 *
 * Points: `copy-batch` (a localfs folder copy is about to hand its next batch of files to a
 * worker), `copy-file` (an SFTP or S3 folder copy is about to copy its next file), `body-chunk`
 * (an async upload's body is about to pass its next chunk, read from the spool).
 */
const passes = new Map<string, number>();
/** Jobs (event ids) whose pause points were released: they go on without stopping again. */
const released = new Set<number>();
/** Resolvers of the passes waiting now. */
const waiting = new Set<() => void>();

/**
 * Lets every job paused at a pause point go on, and stop at none again (tests that watch a job
 * mid-way, then let it finish; in-process, on the thread that runs the jobs).
 */
export function releasePausePoints(): void {
  for (const key of passes.keys()) released.add(Number(key.split(':')[0]));
  for (const resolve of [...waiting]) resolve();
  waiting.clear();
}

/**
 * Passes the pause point `point` for job `eventId`: undefined when the job goes on, or a promise
 * that resolves once `signal` is aborted (at most ten minutes later, so nothing hangs forever).
 */
export function pausePoint(point: string, eventId: number | undefined, signal: AbortSignal): Promise<void> | undefined {
  const spec = process.env.FERRY_TEST_PAUSE;
  if (!spec || eventId === undefined || released.has(eventId)) return undefined;
  const [name, countText] = spec.split(':');
  if (point !== name) return undefined;
  const key = `${eventId}:${point}`;
  const n = (passes.get(key) ?? 0) + 1;
  passes.set(key, n);
  if (n < (Number(countText ?? '1') || 1) || signal.aborted) return undefined;
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      waiting.delete(done);
      resolve();
    };
    const timer = setTimeout(done, 600_000);
    waiting.add(done);
    signal.addEventListener('abort', done, { once: true });
  });
}
