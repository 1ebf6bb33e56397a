/**
 * Bulk jobs on a cluster (issue 17, PostgreSQL): two `ferry serve` nodes sharing one schema, one
 * FERRY_BULK_DIR and one spool, as the README says cluster nodes must.
 *
 * - An export and a batch accepted on node A run on whichever node claims them; node B serves
 *   their status, records and error rows, byte for byte what A serves.
 * - A batch is killed mid-way by SIGKILL of the node running it (the crash point `bulk-row`,
 *   reached with other rows still in flight); the other node claims it when the lease expires,
 *   resumes it from its checkpoint and journal, and every row is applied exactly once: each copy
 *   (overwrite false, so a second application would be a 409 error row) holds its source's
 *   bytes, and the bad rows are error rows once each.
 *
 * Every node carries the crash point: whichever runs the batch dies at its CRASH_AT-th row, and
 * the resumed part is too short for the other node to reach it. A test-only trigger records
 * every claim with the claimer's FERRY_LEASE (distinct per node) to tell the nodes apart.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clusterSkipReason, installClaimAudit, startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { PLATFORM_AUTH, USER_SECRET, startReceiver, type Receiver } from '../helpers/server.js';
import { filesUnder, makeTree, tempFiles } from '../helpers/jobs.js';
import { bulkFiles, startBatch, startExport, waitBulk, type BulkApi } from '../bulk/bulk-api.js';

const skip = (await clusterSkipReason()) ?? undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rows of the killed batch: copies of the files under /src, and BAD rows naming absent files. */
const COPIES = 480;
const BAD = 20;
/** The running node dies at its CRASH_AT-th applied row (its checkpoints come every 256). */
const CRASH_AT = 330;
const LEASES = { a: 2000, b: 2600 };

let cluster: Cluster;
let a: ClusterNode;
let b: ClusterNode;
let receiver: Receiver;
let bulkDir: string;
let hubAuth: string;
let root: string;

before(async () => {
  if (skip) return;
  receiver = await startReceiver();
  bulkDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bulk-shared-'));
  cluster = await startCluster([], { FERRY_BULK_DIR: bulkDir, FERRY_TEST_CRASH: `bulk-row:${CRASH_AT}` });
  a = await cluster.addNode('all', { FERRY_LEASE: String(LEASES.a) });
  await installClaimAudit(cluster);
  b = await cluster.addNode('all', { FERRY_LEASE: String(LEASES.b) });
  const res = await fetch(`${a.base}/instances`, {
    method: 'POST',
    headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ element: { key: 'localfs' }, name: 'bulk', configuration: { root: 'bulk' } }),
  });
  const instance: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(instance));
  hubAuth = `User ${USER_SECRET}, Element ${instance.token}`;
  root = path.join(cluster.localfsBase, 'bulk');
});

after(async () => {
  await cluster?.close();
  await receiver?.close();
  if (bulkDir) fs.rmSync(bulkDir, { recursive: true, force: true });
});

const on = (node: ClusterNode, callback = false): BulkApi => ({ base: node.base!, hubAuth, ...(callback ? { callbackUrl: receiver.url } : {}) });

/** Every page of a batch's error rows, as served by `api`. */
async function allErrors(api: BulkApi, id: number): Promise<any[]> {
  const rows: any[] = [];
  let query = '?pageSize=50';
  for (;;) {
    const res = await fetch(`${api.base}/hubs/documents/bulk/${id}/errors${query}`, { headers: { authorization: api.hubAuth } });
    const page: any = await res.json();
    assert.equal(res.status, 200, JSON.stringify(page));
    rows.push(...page);
    const next = res.headers.get('elements-next-page-token');
    if (!next) return rows;
    query = `?pageSize=50&nextPage=${encodeURIComponent(next)}`;
  }
}

/** The FERRY_LEASE of every node that claimed event `id`, in claim order. */
async function claimers(id: number): Promise<number[]> {
  const rows = await cluster.query('SELECT lease_ms::float8 AS lease_ms FROM test_claims WHERE event_id = $1 ORDER BY at_ms', [id]);
  // The claimer's lease minus the claim statement's few milliseconds: round to its node's.
  return rows.map((r) => (Math.abs(r.lease_ms - LEASES.a) < Math.abs(r.lease_ms - LEASES.b) ? LEASES.a : LEASES.b));
}

test('an export and a batch accepted on node A are served by node B: status, records, error rows', { skip, timeout: 120_000 }, async () => {
  makeTree(path.join(root, 'tree'), 3000, 300);
  const exportId = await startExport(on(a, true), "select * from files where path like '/tree/%' and directory = false");
  const manifest = [
    'operation,path,to,overwrite',
    ...Array.from({ length: 30 }, (_, i) => `copy,/tree/d0/f${i}.txt,/one/f${i}.txt,false`),
    ...Array.from({ length: 5 }, (_, i) => `delete,/nothing/${i}.txt,,`),
  ];
  const batchId = await startBatch(on(a, true), manifest.join('\n'), { filename: 'm.csv', metaData: { continueOnError: true, concurrency: 4 } });

  const exported = await waitBulk(on(b), exportId);
  assert.equal(exported.status, 'COMPLETED', JSON.stringify(exported));
  assert.equal(exported.recordsCount, 3000);
  const batch = await waitBulk(on(b), batchId);
  assert.equal(batch.status, 'COMPLETED', JSON.stringify(batch));
  assert.equal(batch.recordsCount, 30);
  assert.equal(batch.recordsFailedCount, 5);
  for (const id of [exportId, batchId]) assert.equal((await claimers(id)).length, 1, `job ${id} claimed once`);

  const fromB = await bulkFiles(on(b), exportId, 'application/json');
  const ndjson = await fromB.text();
  assert.equal(fromB.status, 200, ndjson);
  const paths = ndjson.split('\n').filter(Boolean).map((l) => JSON.parse(l).path);
  assert.equal(new Set(paths).size, 3000, 'every file once');
  assert.ok(paths.includes('/tree/d9/f2999.txt'));
  const fromA = await bulkFiles(on(a), exportId, 'application/json');
  assert.equal(await fromA.text(), ndjson, 'both nodes serve the same records');
  const csvB = await (await bulkFiles(on(b), exportId, 'text/csv')).text();
  assert.equal(csvB, await (await bulkFiles(on(a), exportId, 'text/csv')).text());
  assert.equal(csvB.trim().split('\n').length, 3001, 'a header row and 3000 records');

  const errors = await allErrors(on(b), batchId);
  assert.deepEqual(errors.map((e) => [e.row, e.operation, e.path, e.statusCode]), Array.from({ length: 5 }, (_, i) => [31 + i, 'delete', `/nothing/${i}.txt`, 404]));
  assert.deepEqual(await allErrors(on(a), batchId), errors);
  for (let i = 0; i < 30; i++) {
    assert.deepEqual(fs.readFileSync(path.join(root, 'one', `f${i}.txt`)), fs.readFileSync(path.join(root, 'tree/d0', `f${i}.txt`)), `copy ${i}`);
  }

  const hooks = await receiver.waitFor(2, 30_000, (h) => h.body?.id === exportId || h.body?.id === batchId);
  const byId = new Map(hooks.map((h) => [h.body.id, h.body]));
  assert.equal(byId.get(exportId).recordsCount, 3000);
  assert.equal(byId.get(batchId).recordsFailedCount, 5);
});

test('a node killed mid-batch: the other node finishes the batch, every row applied exactly once', { skip, timeout: 240_000 }, async () => {
  const sources = makeTree(path.join(root, 'src'), COPIES, 60);
  const rows: string[] = ['operation,path,to,overwrite'];
  const badRows: number[] = [];
  let copy = 0;
  for (let row = 1; row <= COPIES + BAD; row++) {
    if (row % 25 === 0) {
      badRows.push(row);
      rows.push(`copy,/absent/${row}.txt,/dst/absent-${row}.txt,false`);
    } else {
      const rel = [...sources.keys()][copy++];
      rows.push(`copy,/src/${rel},/dst/${rel},false`);
    }
  }
  assert.equal(badRows.length, BAD);
  const id = await startBatch(on(a), rows.join('\n'), { filename: 'm.csv', metaData: { continueOnError: true, concurrency: 4 } });

  // Whichever node runs it kills itself at its CRASH_AT-th row.
  const deadline = Date.now() + 120_000;
  while (a.child.exitCode === null && a.child.signalCode === null && b.child.exitCode === null && b.child.signalCode === null) {
    if (Date.now() > deadline) throw new Error(`no node reached the crash point: ${a.stderr()} ${b.stderr()}`);
    await sleep(50);
  }
  const [dead, survivor] = a.child.signalCode ? [a, b] : [b, a];
  assert.equal(dead.child.signalCode, 'SIGKILL', dead.stderr());
  const doneAtKill = filesUnder(path.join(root, 'dst')).length;
  assert.ok(doneAtKill >= 256 && doneAtKill < COPIES, `killed mid-batch: ${doneAtKill} copies made`);

  const status = await waitBulk(on(survivor), id, undefined, 180_000);
  assert.equal(status.status, 'COMPLETED', JSON.stringify(status));
  assert.equal(status.recordsCount, COPIES, 'every copy done, none a 409 of a second application');
  assert.equal(status.recordsFailedCount, BAD);
  const claims = await claimers(id);
  assert.equal(claims.length, 2, 'claimed by the node that died, then by the other');
  assert.notEqual(claims[0], claims[1]);
  assert.equal(claims[1], survivor === a ? LEASES.a : LEASES.b, 'the survivor finished it');

  const copies = filesUnder(path.join(root, 'dst'));
  assert.deepEqual(tempFiles(copies), [], 'no half-made copy left');
  assert.deepEqual(copies, [...sources.keys()].sort(), 'every copy, nothing else');
  for (const rel of sources.keys()) {
    assert.deepEqual(fs.readFileSync(path.join(root, 'dst', rel)), fs.readFileSync(path.join(root, 'src', rel)), `${rel} holds its source's bytes`);
  }
  const errors = await allErrors(on(survivor), id);
  assert.deepEqual(
    errors.map((e) => [e.row, e.path, e.statusCode]),
    badRows.map((row) => [row, `/absent/${row}.txt`, 404]),
    'each bad row is an error row once',
  );
});
