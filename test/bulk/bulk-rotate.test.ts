/**
 * Bulk results across `ferry rotate-master-key` (issue 17): the results of jobs that finished
 * before a rotation are re-sealed under the new key, so after a restart on it an export's
 * records (CSV and NDJSON) and a batch's error rows read back byte for byte as before, and the
 * old key no longer opens them. A rotation killed half-way (after one result was replaced, and
 * again with a re-sealed copy written but not renamed) leaves every result readable, and running
 * it again finishes it. A job whose results expired has nothing to re-seal and stays expired.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MasterKey } from '../../src/identity/crypto.js';
import { RESULT_KEY_LABEL } from '../../src/bulk/results.js';
import { readSealed } from '../../src/bulk/sealed-file.js';
import { CLI, cliMissing } from '../helpers/process.js';
import { FAST_ASYNC, dropStoreOf, startTestServer, storeEnv, type TestServer } from '../helpers/server.js';
import { makeTree } from '../helpers/jobs.js';
import { bulkFiles, bulkStatus, errorsPage, startBatch, startExport, waitBulk, type BulkApi } from './bulk-api.js';

const run = promisify(execFile);
const ENV = { ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off' };

/** Runs `ferry rotate-master-key` on `dir`; with `crash`, expects it killed at that crash point. */
async function rotate(dir: string, crash?: string): Promise<string> {
  const env = { ...process.env, ...storeEnv(dir), FERRY_DATA_DIR: dir, FERRY_LOG_LEVEL: 'silent', ...(crash ? { FERRY_TEST_CRASH: crash } : {}) };
  try {
    const { stdout } = await run(process.execPath, [CLI, 'rotate-master-key'], { env });
    assert.equal(crash, undefined, `the rotation was to be killed at ${crash}, it finished`);
    return stdout;
  } catch (e: any) {
    if (!crash) throw e;
    assert.equal(e.signal, 'SIGKILL', `killed at ${crash}: ${e.stderr}`);
    return '';
  }
}

/** What a client reads of the two jobs: the export's CSV and NDJSON, every page of the batch's errors. */
async function readAll(api: BulkApi, exportId: number, batchId: number): Promise<{ csv: string; ndjson: string; errors: string[] }> {
  const csv = await bulkFiles(api, exportId, 'text/csv');
  const ndjson = await bulkFiles(api, exportId, 'application/json');
  const out = { csv: await csv.text(), ndjson: await ndjson.text(), errors: [] as string[] };
  assert.equal(csv.status, 200, out.csv);
  assert.equal(ndjson.status, 200, out.ndjson);
  let query = '?pageSize=4';
  for (;;) {
    const res = await fetch(`${api.base}/hubs/documents/bulk/${batchId}/errors${query}`, { headers: { authorization: api.hubAuth } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    out.errors.push(text);
    const next = res.headers.get('elements-next-page-token');
    if (!next) break;
    query = `?pageSize=4&nextPage=${encodeURIComponent(next)}`;
  }
  return out;
}

const keyLines = (dir: string) => fs.readFileSync(path.join(dir, 'master.key'), 'utf8').trim().split('\n');

/** Every file under the bulk dir, relative path → bytes. */
function sealedFiles(bulkDir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const job of fs.readdirSync(bulkDir)) {
    for (const name of fs.readdirSync(path.join(bulkDir, job))) {
      if (name !== 'state.json') out.set(`${job}/${name}`, fs.readFileSync(path.join(bulkDir, job, name)));
    }
  }
  return out;
}

test('results of earlier jobs read byte-equal after a rotation, also through one killed half-way; expired ones stay expired', { timeout: 180_000 }, async (t) => {
  const missing = cliMissing();
  if (missing) return t.skip(missing);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bulk-rotate-'));
  let srv: TestServer | null = null;
  try {
    // A job whose results expire before the rotation (kept 1 s on this first start).
    srv = await startTestServer({ ...ENV, FERRY_RESULT_RETENTION: '1' }, dir);
    const inst = await srv.instance('localfs', { root: 'rotate' });
    const root = path.join(srv.config.localfsBase, 'rotate');
    const bulkDir = srv.config.bulkDir;
    makeTree(path.join(root, 'tree'), 60, 20);
    let api: BulkApi = { base: srv.base, hubAuth: inst.auth };
    const expiredId = await startExport(api, 'select * from files');
    assert.equal((await waitBulk(api, expiredId)).status, 'COMPLETED');
    await new Promise((r) => setTimeout(r, 1500));
    const gone = await bulkFiles(api, expiredId, 'application/json');
    assert.equal(gone.status, 404);
    assert.match(((await gone.json()) as any).message, /expired/);
    await srv.close();

    // Two jobs whose results are kept: an export, and a batch with 6 error rows.
    srv = await startTestServer(ENV, dir);
    api = { base: srv.base, hubAuth: inst.auth };
    const exportId = await startExport(api, "select * from files where path like '/tree/%'");
    const manifest = ['operation,path,to', ...Array.from({ length: 4 }, (_, i) => `createFolder,/made/${i},`), ...Array.from({ length: 6 }, (_, i) => `copy,/absent/${i}.txt,/x/${i}.txt`)];
    const batchId = await startBatch(api, manifest.join('\n'), { filename: 'm.csv', metaData: { continueOnError: true } });
    assert.equal((await waitBulk(api, exportId)).recordsCount, 63, '60 files in 3 folders');
    const batch = await waitBulk(api, batchId);
    assert.equal(batch.recordsFailedCount, 6);
    const before = await readAll(api, exportId, batchId);
    assert.equal(before.errors.length, 2, 'the 6 error rows page 4 + 2');
    await srv.close();
    srv = null;
    const firstKey = keyLines(dir)[0];
    const sealedBefore = sealedFiles(bulkDir);
    assert.deepEqual([...sealedBefore.keys()].sort(), [`${batchId}/errors`, `${exportId}/records`].sort(), 'the expired result was deleted');

    // Killed once one result is replaced: one file under the new key, one under the old, both read.
    await rotate(dir, 'resealed:1');
    assert.equal(keyLines(dir).length, 2, 'the old key is kept while the rotation is unfinished');
    const half = sealedFiles(bulkDir);
    const changed = [...sealedBefore].filter(([name, bytes]) => !half.get(name)!.equals(bytes));
    assert.equal(changed.length, 1, 'one result re-sealed, the other not yet');
    srv = await startTestServer(ENV, dir);
    assert.deepEqual(await readAll({ base: srv.base, hubAuth: inst.auth }, exportId, batchId), before, 'readable half-way through the rotation');
    await srv.close();
    srv = null;

    // Killed with a re-sealed copy written beside a result, not yet renamed over it.
    await rotate(dir, 'reseal-temp:1');
    assert.ok([...sealedFiles(bulkDir).keys()].some((n) => n.endsWith('.reseal')), 'a re-sealed copy was left');

    const stdout = await rotate(dir);
    assert.match(stdout, /Re-sealed 2 bulk result file\(s\)/);
    assert.equal(keyLines(dir).length, 1, 'the old keys are dropped once everything is re-sealed');
    const after = sealedFiles(bulkDir);
    assert.deepEqual([...after.keys()].sort(), [...sealedBefore.keys()].sort(), 'no re-sealed copy left behind');
    for (const [name, bytes] of after) {
      assert.equal(bytes.length, sealedBefore.get(name)!.length, `${name} keeps its length (checkpoints stay valid)`);
      assert.ok(!bytes.equals(sealedBefore.get(name)!), `${name} is re-sealed`);
    }
    // The first key no longer opens them; the key now in master.key does.
    const oldKey = MasterKey.fromBase64(firstKey).derive(RESULT_KEY_LABEL);
    const newKey = MasterKey.fromBase64(keyLines(dir)[0]).derive(RESULT_KEY_LABEL);
    const records = path.join(bulkDir, String(exportId), 'records');
    await assert.rejects(async () => {
      for await (const _ of readSealed(records, oldKey));
    }, /no configured master key/);
    let plain = '';
    for await (const chunk of readSealed(records, newKey)) plain += chunk.toString('utf8');
    assert.equal(plain, before.ndjson, 'the stored records are what the API served');

    srv = await startTestServer(ENV, dir);
    api = { base: srv.base, hubAuth: inst.auth };
    assert.deepEqual(await readAll(api, exportId, batchId), before, 'byte-equal after the rotation, on the new key');
    const expired = await bulkFiles(api, expiredId, 'text/csv');
    assert.equal(expired.status, 404);
    assert.match(((await expired.json()) as any).message, /expired/);
    const status = await bulkStatus(api, expiredId);
    assert.equal(status.body.status, 'COMPLETED');
    assert.equal((await errorsPage(api, batchId, '?pageSize=30')).body.length, 6);
  } finally {
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    await dropStoreOf(dir);
  }
});
