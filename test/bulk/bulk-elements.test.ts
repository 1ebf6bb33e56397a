/**
 * Export on every element (issue 17): the same tree, built through the hub's upload route on
 * localfs, on a real s3rver bucket and on a real sshd, exports the same records (path, name,
 * size, id, tags) for the same query; and a batch copies on each. A suite whose server is
 * absent skips with its reason.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FAST_ASYNC, multipartFile, startTestServer, type TestServer } from '../helpers/server.js';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { csvRecords, jsonRecords, startBatch, startExport, waitBulk, type BulkApi } from './bulk-api.js';

let srv: TestServer;
let s3: S3TestServer | null = null;
let sshd: TestSshd | null = null;
let sshdSkip: string | null = null;
const apis = new Map<string, BulkApi>();

const TREE = [
  '/photos/2024/a.jpg',
  '/photos/2024/b.jpg',
  '/photos/2024/deep/c.png',
  '/photos/2025/d.jpg',
  '/photos/e.txt',
  '/docs/report.pdf',
  '/docs/notes.txt',
  '/top.txt',
];

async function build(api: BulkApi): Promise<void> {
  for (const [i, p] of TREE.entries()) {
    const res = await fetch(`${api.base}/hubs/documents/files?path=${encodeURIComponent(p)}`, {
      method: 'POST',
      headers: { authorization: api.hubAuth },
      body: multipartFile('x'.repeat(500 + i * 300), p.split('/').pop()),
    });
    assert.equal(res.status, 200, await res.text());
  }
  const tag = await fetch(`${api.base}/hubs/documents/files/metadata?path=/photos/2024/a.jpg`, {
    method: 'PATCH',
    headers: { authorization: api.hubAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ tags: ['holiday', 'a,b "quoted"'] }),
  });
  assert.equal(tag.status, 200, await tag.text());
}

before(async () => {
  srv = await startTestServer({ ...FAST_ASYNC, FERRY_RUNNER_THREAD: 'off' });
  const local = await srv.instance('localfs', { root: 'same-tree' });
  apis.set('localfs', { base: srv.base, hubAuth: local.auth });
  s3 = await startS3();
  if (s3) apis.set('amazons3', { base: srv.base, hubAuth: (await srv.instance('amazons3', s3.config)).auth });
  sshdSkip = await whySshdUnavailable();
  if (!sshdSkip) sshd = await startSshd();
  if (sshd) apis.set('sftp', { base: srv.base, hubAuth: (await srv.instance('sftp', sshd.config)).auth });
  for (const api of apis.values()) await build(api);
});

after(async () => {
  await srv?.close();
  await s3?.stop();
  await sshd?.stop();
});

const Q = "select * from files where path like '/photos/%' and size > 600 and directory = false";
const shape = (r: any) => ({ id: r.id, path: r.path, name: r.name, size: Number(r.size), directory: String(r.directory), tags: typeof r.tags === 'string' ? JSON.parse(r.tags) : r.tags });
let localRecords: ReturnType<typeof shape>[] | null = null;
const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : 1);

for (const element of ['localfs', 'amazons3', 'sftp']) {
  test(`${element}: the export gives the same records as localfs, in CSV and NDJSON`, { timeout: 120_000 }, async (t) => {
    const api = apis.get(element);
    if (!api) return t.skip(element === 'sftp' ? (sshdSkip ?? 'sshd could not start') : 's3rver could not start');
    const id = await startExport(api, Q);
    const status = await waitBulk(api, id);
    assert.equal(status.status, 'COMPLETED', JSON.stringify(status));
    const csv = (await csvRecords(api, id)).rows.map(shape).sort(byPath);
    const json = (await jsonRecords(api, id)).rows.map(shape).sort(byPath);
    assert.deepEqual(csv, json);
    assert.deepEqual(
      csv.map((r) => r.path),
      ['/photos/2024/b.jpg', '/photos/2024/deep/c.png', '/photos/2025/d.jpg', '/photos/e.txt'],
    );
    if (element === 'localfs') localRecords = csv;
    else if (localRecords) assert.deepEqual(csv, localRecords, 'the same records as localfs');
    const all = await startExport(api, "select * from files where name = 'a.jpg'");
    await waitBulk(api, all);
    const [a] = (await csvRecords(api, all)).rows.map(shape);
    assert.deepEqual(a.tags, ['holiday', 'a,b "quoted"'], 'tags survive CSV quoting');
    assert.equal(status.recordsCount, 4);
  });

  test(`${element}: a batch copies and tags through the documents service`, { timeout: 120_000 }, async (t) => {
    const api = apis.get(element);
    if (!api) return t.skip(element === 'sftp' ? (sshdSkip ?? 'sshd could not start') : 's3rver could not start');
    const manifest = [
      { operation: 'copy', path: '/docs/notes.txt', to: '/copied/notes.txt' },
      { operation: 'setTags', path: '/top.txt', tags: ['t1'] },
      { operation: 'copy', path: '/nope.txt', to: '/copied/nope.txt' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n');
    const id = await startBatch(api, manifest);
    const status = await waitBulk(api, id);
    assert.equal(status.status, 'COMPLETED');
    assert.equal(status.recordsCount, 2);
    assert.equal(status.recordsFailedCount, 1);
    const res = await fetch(`${api.base}/hubs/documents/files/metadata?path=/copied/notes.txt`, { headers: { authorization: api.hubAuth } });
    assert.equal(res.status, 200);
  });
}
