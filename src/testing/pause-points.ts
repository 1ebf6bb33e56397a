/**
 * Deterministic pause points for the cancellation tests (issue 16): `FERRY_TEST_PAUSE=<point>[:<n>]`
 * makes every job stop at the named point from its n-th pass on (default: the first), and wait
 * there until its signal is aborted (a cancel) — so a test can cancel a job that is certainly
 * mid-way, without timing. Counted per job (event id), on whichever thread passes the point.
 * Unset (always, outside tests), a pass costs one environment read. Never documented as a
 * setting: it exists to prove cancellation.
 *
 * Points: `copy-batch` (a localfs folder copy is about to hand its next batch of files to a
 * worker), `copy-file` (an SFTP or S3 folder copy is about to copy its next file), `body-chunk`
 * (an async upload's body is about to pass its next chunk, read from the spool).
 */
const passes = new Map<string, number>();

/**
 * Passes the pause point `point` for job `eventId`: undefined when the job goes on, or a promise
 * that resolves once `signal` is aborted (at most ten minutes later, so nothing hangs forever).
 */
export function pausePoint(point: string, eventId: number | undefined, signal: AbortSignal): Promise<void> | undefined {
  const spec = process.env.FERRY_TEST_PAUSE;
  if (!spec || eventId === undefined) return undefined;
  const [name, countText] = spec.split(':');
  if (point !== name) return undefined;
  const key = `${eventId}:${point}`;
  const n = (passes.get(key) ?? 0) + 1;
  passes.set(key, n);
  if (n < (Number(countText ?? '1') || 1) || signal.aborted) return undefined;
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 600_000);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
