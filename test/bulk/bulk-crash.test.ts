/**
 * Bulk jobs survive SIGKILL (issue 17). A `ferry serve` process on localfs is killed at a
 * deterministic crash point (src/testing/crash-points.ts) in the middle of a job and started
 * again on the same data dir: the job's lease expires and it runs again, resuming from its
 * state and journal.
 *
 * - Export of 12,000 files, killed after its 7th batch of 1,000 records (written past its last
 *   checkpoint, if it took one): the result holds every matching record exactly once.
 * - Batch of 600 `copy` rows with overwrite false (applying one twice would fail with 409),
 *   4 at a time, killed after the 450th row's outcome was journaled: it completes with 600
 *   rows done and none failed, every copy in place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAST_ASYNC, ORG_SECRET, PLATFORM_AUTH, USER_SECRET } from '../helpers/server.js';
import { cliMissing, freePort, startFerryProcess, type FerryProcess } from '../helpers/process.js';
import { makeTree } from '../helpers/jobs.js';
import { jsonRecords, startBatch, startExport, waitBulk, type BulkApi } from './bulk-api.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exited(ferry: FerryProcess, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (ferry.child.exitCode === null && ferry.child.signalCode === null) {
    if (Date.now() > until) throw new Error('the crash point was never reached');
    await sleep(50);
  }
  assert.equal(ferry.child.signalCode, 'SIGKILL', ferry.stderr());
}

async function setup(crash: string): Promise<{ dataDir: string; port: number; ferry: FerryProcess; api: BulkApi; root: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bulk-crash-'));
  const port = await freePort();
  const env = { ...FAST_ASYNC, FERRY_USER_SECRET: USER_SECRET, FERRY_ORG_SECRET: ORG_SECRET, FERRY_TEST_CRASH: crash };
  const ferry = await startFerryProcess({ dataDir, port, env });
  const res = await fetch(`${ferry.base}/instances`, {
    method: 'POST',
    headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ element: { key: 'localfs' }, name: 'crash', configuration: { root: 'crash' } }),
  });
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return { dataDir, port, ferry, api: { base: ferry.base, hubAuth: `User ${USER_SECRET}, Element ${body.token}` }, root: path.join(dataDir, 'files', 'crash') };
}

async function restart(dataDir: string, port: number): Promise<FerryProcess> {
  return startFerryProcess({ dataDir, port, env: { ...FAST_ASYNC, FERRY_USER_SECRET: USER_SECRET, FERRY_ORG_SECRET: ORG_SECRET } });
}

test('an export killed mid-way ends, after a restart, with every matching record exactly once', { timeout: 300_000 }, async (t) => {
  const missing = cliMissing();
  if (missing) return t.skip(missing);
  const { dataDir, port, ferry, api, root } = await setup('bulk-batch:7');
  let again: FerryProcess | null = null;
  try {
    makeTree(path.join(root, 'tree'), 12_000, 100);
    const id = await startExport(api, "select * from files where directory = false and extension = 'txt'");
    await exited(ferry);
    again = await restart(dataDir, port);
    const status = await waitBulk({ ...api, base: again.base }, id, undefined, 240_000);
    assert.equal(status.status, 'COMPLETED', JSON.stringify(status));
    assert.equal(status.recordsCount, 12_000);
    const { rows } = await jsonRecords({ ...api, base: again.base }, id);
    assert.equal(rows.length, 12_000);
    const paths = new Set(rows.map((r) => r.path));
    assert.equal(paths.size, 12_000, 'no record twice');
    for (let i = 0; i < 12_000; i += 997) assert.ok(paths.has(`/tree/d${Math.floor(i / 100)}/f${i}.txt`), `record ${i} present`);
  } finally {
    await again?.stop();
    await ferry.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a batch killed mid-way resumes after its last completed row and applies no row twice', { timeout: 300_000 }, async (t) => {
  const missing = cliMissing();
  if (missing) return t.skip(missing);
  const { dataDir, port, ferry, api, root } = await setup('bulk-row:450');
  let again: FerryProcess | null = null;
  try {
    makeTree(path.join(root, 'src'), 600);
    const manifest = ['operation,path,to,overwrite', ...Array.from({ length: 600 }, (_, i) => `copy,/src/f${i}.txt,/dst/f${i}.txt,false`)].join('\n');
    const id = await startBatch(api, manifest, { filename: 'm.csv', metaData: { concurrency: 4 } });
    await exited(ferry);
    const before = fs.readdirSync(path.join(root, 'dst')).filter((n) => !n.startsWith('.')).length;
    assert.ok(before >= 450 && before < 600, `killed mid-way: ${before} copies made`);
    again = await restart(dataDir, port);
    const status = await waitBulk({ ...api, base: again.base }, id, undefined, 240_000);
    assert.equal(status.status, 'COMPLETED', JSON.stringify(status));
    assert.equal(status.recordsCount, 600);
    assert.equal(status.recordsFailedCount, 0, 'no row applied twice (a second copy would be a 409)');
    const copies = fs.readdirSync(path.join(root, 'dst'));
    assert.equal(copies.length, 600, 'every copy, no temp file left');
  } finally {
    await again?.stop();
    await ferry.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
