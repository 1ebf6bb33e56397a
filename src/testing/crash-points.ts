/**
 * Deterministic crash points for the crash tests (issue 25): `FERRY_TEST_CRASH=<point>[:<n>]`
 * makes this process kill itself with SIGKILL the n-th time (default: the first) it passes the
 * named point, on whichever thread passes it. Unset (always, outside tests), it costs one
 * property read. Never documented as a setting: it exists to prove crash recovery.
 *
 * Points: `before-write` (an operation journaled its intent, nothing written yet), `file-placed`
 * (a file of a copy was renamed into place; with :n, mid-way through a folder copy),
 * `temp-filled` (a file's bytes are in its temp file, not yet renamed), `after-write` (the
 * operation finished, its outcome not yet stored), `multipart-created` (an S3 multipart upload
 * was created, its id not yet journaled), `spooled` (an async upload's body is in the
 * spool, the event not yet committed). Bulk jobs (issue 17): `bulk-batch` (an export wrote a
 * batch of records, maybe past its last checkpoint), `bulk-checkpoint` (an export's or batch's
 * state was made durable), `bulk-row` (a batch row's outcome was journaled). Master key
 * rotation: `reseal-temp` (a bulk result's re-sealed copy is written, not yet renamed over it),
 * `resealed` (it was renamed over it).
 */
const spec = process.env.FERRY_TEST_CRASH ?? '';
const [name, countText] = spec.split(':');
const target = Number(countText ?? '1') || 1;
let passed = 0;

/** Passes the crash point `point`: kills the process if the test asked for it here. */
export function crashPoint(point: string): void {
  if (spec === '' || point !== name) return;
  passed += 1;
  if (passed >= target) process.kill(process.pid, 'SIGKILL');
}
