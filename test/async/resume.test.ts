/**
 * Crash recovery of jobs (issue 25): Ferry runs as a child process that kills itself with
 * SIGKILL at a chosen point of a job (`FERRY_TEST_CRASH`, src/testing/crash-points.ts) — before
 * its first write, mid-way through a folder copy, with a file's bytes in a temp file not yet
 * renamed, after the last write but before the outcome is stored — and is restarted on the same
 * data dir (sometimes crashing once more during the re-run). Afterwards, for every operation on
 * every element: the webhook says `completed` (never a 409 against the job's own work), the
 * destination equals the source byte for byte, no temp file is left, and `response.events`
 * lists every object the operation touched, as an uncrashed run would.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAST_ASYNC, ORG_SECRET, PLATFORM_AUTH, USER_SECRET, multipartFile, startReceiver, testBackend, type Receiver } from '../helpers/server.js';
import { cliMissing, dropProcessSchema, freePort, startFerryProcess, type FerryProcess } from '../helpers/process.js';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { filesUnder, tempFiles } from '../helpers/jobs.js';

/** Where an element keeps its objects, seen from the test (for temp-file checks). */
interface Target {
  element: string;
  configuration: Record<string, string>;
  /** The host folder that is the instance root (localfs, SFTP), or null (S3: no temp names). */
  localRoot: (dataDir: string) => string | null;
  /** Scenarios only this element has. */
  extra?: (t: TestContext, h: Harness) => Promise<void>;
}

/** The source tree every scenario starts from: relative path → bytes. */
function sourceTree(): Map<string, Buffer> {
  const tree = new Map<string, Buffer>();
  for (let d = 0; d < 3; d++) {
    for (let f = 0; f < 8; f++) {
      const size = f === 0 ? 300_000 : 1000 + f * 777 + d;
      tree.set(`/d${d}/f${f}.bin`, crypto.randomBytes(size));
    }
    tree.set(`/d${d}/sub/deep.txt`, Buffer.from(`deep file of d${d}`));
  }
  tree.set('/top.txt', Buffer.from('top-level file'));
  return tree;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Harness {
  ferry: FerryProcess | null = null;
  auth = '';
  /** What the servers logged (warnings and worse) since a test last emptied it. */
  logs = '';
  readonly port: Promise<number> = freePort();
  private scenario = 0;

  constructor(
    readonly dataDir: string,
    readonly receiver: Receiver,
    readonly target: Target,
    readonly tree: Map<string, Buffer>,
  ) {}

  env(crash?: string): Record<string, string> {
    return {
      ...FAST_ASYNC,
      FERRY_USER_SECRET: USER_SECRET,
      FERRY_ORG_SECRET: ORG_SECRET,
      ...(crash ? { FERRY_TEST_CRASH: crash } : {}),
    };
  }

  async start(crash?: string): Promise<FerryProcess> {
    this.ferry = await startFerryProcess({
      dataDir: this.dataDir,
      port: await this.port,
      env: { ...this.env(crash), FERRY_LOG_LEVEL: 'warn' },
      onStdout: (chunk) => (this.logs = (this.logs + chunk).slice(-64_000)),
    });
    return this.ferry;
  }

  /** Starts the clean server and creates the instance (first call only). */
  async setup(): Promise<void> {
    const ferry = await this.start();
    const res = await fetch(`${ferry.base}/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ element: { key: this.target.element }, name: 'resume', configuration: this.target.configuration }),
    });
    const body: any = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    this.auth = `User ${USER_SECRET}, Element ${body.token}`;
  }

  call(pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', this.auth);
    return fetch(`${this.ferry!.base}/hubs/documents${pathAndQuery}`, { ...init, headers });
  }

  async json(pathAndQuery: string, method: string, body?: unknown): Promise<any> {
    const res = await this.call(pathAndQuery, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    assert.equal(res.status, 200, `${method} ${pathAndQuery}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** Uploads the source tree under `root` (sync). */
  async seed(root: string): Promise<void> {
    for (const [rel, bytes] of this.tree) {
      const res = await this.call(`/files?path=${encodeURIComponent(root + rel)}&overwrite=true`, {
        method: 'POST',
        body: multipartFile(bytes, path.basename(rel)),
      });
      assert.equal(res.status, 200, await res.text());
    }
  }

  /** Every file under `root` via the API: relative path → bytes (folders as empty-named marks). */
  async read(root: string): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const folders = [root];
    while (folders.length) {
      const folder = folders.pop()!;
      const items: any[] = await this.json(`/folders/contents?path=${encodeURIComponent(folder)}&pageSize=500`, 'GET');
      for (const item of items) {
        if (item.directory) folders.push(item.path);
        else {
          const res = await this.call(`/files?path=${encodeURIComponent(item.path)}`);
          assert.equal(res.status, 200);
          out.set(item.path.slice(root.length), Buffer.from(await res.arrayBuffer()));
        }
      }
    }
    return out;
  }

  /** Asserts the tree under `root` equals the source, byte for byte. */
  async assertTree(root: string): Promise<void> {
    const found = await this.read(root);
    assert.deepEqual([...found.keys()].sort(), [...this.tree.keys()].sort(), `files under ${root}`);
    for (const [rel, bytes] of this.tree) assert.ok(found.get(rel)!.equals(bytes), `${root}${rel} differs from its source`);
  }

  /** Folder and file paths of the source tree under `root`, as a folder copy's events list them. */
  treePaths(root: string): string[] {
    const paths = new Set<string>([root]);
    for (const rel of this.tree.keys()) {
      const parts = rel.split('/').slice(1);
      for (let i = 1; i <= parts.length; i++) paths.add(`${root}/${parts.slice(0, i).join('/')}`);
    }
    return [...paths].sort();
  }

  /** Asserts no Ferry temp file is left anywhere under the instance root. */
  assertNoTemp(): void {
    const root = this.target.localRoot(this.dataDir);
    if (!root) return;
    const walk = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
        d.name.startsWith('.ferry-upload-') ? [path.join(dir, d.name)] : d.isDirectory() ? walk(path.join(dir, d.name)) : [],
      );
    assert.deepEqual(walk(root), [], 'temp files left behind');
  }

  assertSpoolEmpty(): void {
    const spool = path.join(this.dataDir, 'spool');
    assert.deepEqual(fs.existsSync(spool) ? fs.readdirSync(spool) : [], [], 'spool files left behind');
  }

  /**
   * Sends an async request to a server started with the first crash point, waits for it to
   * die, restarts it with each further crash point (a crash during the re-run), then cleanly;
   * resolves with the job's webhook.
   */
  async crashing(crashes: string[], send: (headers: Record<string, string>) => Promise<Response>): Promise<any> {
    const tag = `s${++this.scenario}`;
    await this.ferry?.stop();
    let ferry = await this.start(crashes[0]);
    const headers = { 'elements-async-request': 'true', 'elements-async-callback-url': `${this.receiver.url}?${tag}` };
    // The answer may be lost to the crash (the job starts the moment the event commits).
    await send(headers).then((r) => r.arrayBuffer()).catch(() => undefined);
    for (const next of [...crashes.slice(1), undefined]) {
      await waitForExit(ferry);
      ferry = await this.start(next);
    }
    const [hook] = await this.receiver.waitFor(1, 30_000, (h) => h.url.endsWith(`?${tag}`));
    return hook.body;
  }
}

async function waitForExit(ferry: FerryProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (ferry.child.exitCode === null && ferry.child.signalCode === null) {
    if (Date.now() > deadline) {
      await ferry.kill();
      throw new Error(`the server did not crash at its crash point: ${ferry.stderr()}`);
    }
    await sleep(20);
  }
  assert.equal(ferry.child.signalCode, 'SIGKILL', `expected a crash, got ${ferry.child.exitCode}: ${ferry.stderr()}`);
}

function completed(hook: any): void {
  assert.equal(hook.eventStatus, 'completed', JSON.stringify(hook).slice(0, 600));
  assert.equal(hook.statusCode, 200);
}

const eventPaths = (hook: any): string[] => hook.response.events.map((e: any) => e.path).sort();

/**
 * How much runs on an element: `full` every operation at every point (localfs); `files` adds
 * the torn-file scenarios to `core` (an element with temp files: SFTP); `core` the operations
 * whose element code differs (copy, upload, move, delete) at the points that matter most;
 * `extra` only the element's own scenarios.
 */
type Level = 'full' | 'files' | 'core' | 'extra';

/**
 * On PostgreSQL (resume.postgres.test.ts) what differs is the store: the journal, and a killed
 * node's leases expiring instead of being released at start. `core` on localfs covers the
 * operations, S3's own scenarios the element that journals mid-operation (its multipart upload
 * ids); what the levels above add is element code, run on SQLite. That keeps the variant to a
 * few minutes.
 */
const ON_POSTGRES = testBackend() === 'postgres';

/** The operations every element must recover, each at several crash points. */
async function scenarios(t: TestContext, h: Harness, level: Level): Promise<void> {
  const full = level === 'full';
  const files = level === 'full' || level === 'files';
  await h.seed('/src');
  if (level === 'extra') return h.target.extra?.(t, h);

  const folderCopy = async (name: string, crashes: string[]) =>
    t.test(`folder copy, crash at ${crashes.join(' then ')}`, async () => {
      const to = `/copy-${name}`;
      const hook = await h.crashing(crashes, (headers) =>
        h.call(`/folders/copy?path=/src`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ path: to }) }),
      );
      completed(hook);
      await h.assertTree(to);
      h.assertNoTemp();
      assert.deepEqual(eventPaths(hook), h.treePaths(to));
    });
  if (full) await folderCopy('before', ['before-write']);
  await folderCopy('mid', ['file-placed:8', 'file-placed:4']);
  if (full) await folderCopy('temp', ['temp-filled:6']);
  await folderCopy('after', ['after-write']);

  const big = crypto.randomBytes(3 * 1024 * 1024 + 17);
  const upload = async (crash: string) =>
    t.test(`upload, crash at ${crash}`, async () => {
      const file = `/up-${crash.replace(/\W/g, '')}/big.bin`;
      const hook = await h.crashing([crash], (headers) =>
        h.call(`/files?path=${encodeURIComponent(file)}`, { method: 'POST', headers, body: multipartFile(big, 'big.bin') }),
      );
      completed(hook);
      assert.deepEqual(eventPaths(hook), [file]);
      const res = await h.call(`/files?path=${encodeURIComponent(file)}`);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(big), 'uploaded bytes differ');
      h.assertNoTemp();
      h.assertSpoolEmpty();
    });
  if (files) await upload('temp-filled');
  await upload('after-write');

  await t.test('file copy, crash after the write', async () => {
    const hook = await h.crashing(['after-write'], (headers) =>
      h.call(`/files/copy?path=/src/top.txt`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ path: '/one/top.txt' }) }),
    );
    completed(hook);
    assert.deepEqual(eventPaths(hook), ['/one/top.txt']);
    h.assertNoTemp();
  });

  await t.test('move (PATCH path) of a folder, crash after the write', async () => {
    await h.json('/folders/copy?path=/src', 'POST', { path: '/to-move' });
    const hook = await h.crashing(['after-write'], (headers) =>
      h.call(`/folders/metadata?path=/to-move`, { method: 'PATCH', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ path: '/moved', tags: ['m'] }) }),
    );
    completed(hook);
    await h.assertTree('/moved');
    assert.equal((await h.call('/folders/metadata?path=/to-move')).status, 404);
    assert.deepEqual(eventPaths(hook), h.treePaths('/moved'));
    assert.deepEqual((await h.json('/folders/metadata?path=/moved', 'GET')).tags, ['m']);
  });

  await t.test('folder delete, crash after the write', async () => {
    await h.json('/folders/copy?path=/src', 'POST', { path: '/to-delete' });
    const hook = await h.crashing(['after-write'], (headers) => h.call(`/folders?path=/to-delete`, { method: 'DELETE', headers }));
    completed(hook);
    assert.deepEqual(eventPaths(hook), h.treePaths('/to-delete'));
    assert.ok(hook.response.events.every((e: any) => e.metadata.deleted === true));
    assert.equal((await h.call('/folders/metadata?path=/to-delete')).status, 404);
  });

  await h.target.extra?.(t, h);
  if (files) await syncCut(t, h);
  if (!full) return;
  await t.test('folder create, crash after the write', async () => {
    const hook = await h.crashing(['after-write'], (headers) =>
      h.call(`/folders`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ path: '/made/here', tags: ['x'] }) }),
    );
    completed(hook);
    assert.deepEqual(eventPaths(hook), ['/made/here']);
    assert.deepEqual((await h.json('/folders/metadata?path=/made/here', 'GET')).tags, ['x']);
  });

  await t.test('tag change, crash after the write', async () => {
    const hook = await h.crashing(['after-write'], (headers) =>
      h.call(`/files/metadata?path=/src/top.txt`, { method: 'PATCH', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ tags: ['a', 'b'] }) }),
    );
    completed(hook);
    assert.deepEqual((await h.json('/files/metadata?path=/src/top.txt', 'GET')).tags, ['a', 'b']);
  });

  await t.test('an upload whose server dies before its event commits leaves no spool file', async () => {
    await h.ferry?.stop();
    const ferry = await h.start('spooled');
    const res = await h
      .call(`/files?path=/never.bin`, {
        method: 'POST',
        headers: { 'elements-async-request': 'true', 'elements-async-callback-url': h.receiver.url },
        body: multipartFile(big, 'never.bin'),
      })
      .catch(() => null);
    assert.equal(res, null, 'the request must not be answered');
    await waitForExit(ferry);
    await h.start();
    h.assertSpoolEmpty();
    assert.equal((await h.call('/files/metadata?path=/never.bin')).status, 404);
  });
}

/** A sync folder copy cut by a crash leaves no short file under a final name. */
async function syncCut(t: TestContext, h: Harness): Promise<void> {
  await t.test('a sync folder copy cut by a crash leaves no short file under a final name', async () => {
    await h.ferry?.stop();
    await h.start('file-placed:6');
    await h.call(`/folders/copy?path=/src`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: '/sync-cut' }) }).catch(() => null);
    await waitForExit(h.ferry!);
    const root = h.target.localRoot(h.dataDir)!;
    const walk = (dir: string, rel: string): void => {
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        if (d.name.startsWith('.ferry-upload-')) continue;
        if (d.isDirectory()) walk(path.join(dir, d.name), `${rel}/${d.name}`);
        else assert.equal(fs.statSync(path.join(dir, d.name)).size, h.tree.get(`${rel}/${d.name}`)!.length, `${rel}/${d.name} is torn`);
      }
    };
    walk(path.join(root, 'sync-cut'), '');
    await h.start();
    const listed: any[] = await h.json('/search?text=ferry&path=/', 'GET');
    assert.deepEqual(listed, [], 'temp files must not be listed or found');
  });

  await t.test('a sync folder copy cut with a file in its temp name: the temp file goes at the restart', async () => {
    await h.ferry?.stop();
    await h.start('temp-filled:3');
    await h.call(`/folders/copy?path=/src`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: '/sync-temp' }) }).catch(() => null);
    await waitForExit(h.ferry!);
    const root = path.join(h.target.localRoot(h.dataDir)!, 'sync-temp');
    assert.ok(tempFiles(filesUnder(root)).length > 0, 'the crash left a temp file in the copied tree');
    await h.start();
    // No request: the start removes the crashed copy's temp files, wherever in its tree.
    const until = Date.now() + 10_000;
    while (tempFiles(filesUnder(root)).length > 0 && Date.now() < until) await sleep(25);
    assert.deepEqual(tempFiles(filesUnder(root)), [], 'temp files left in the tree of the crashed sync copy');
  });
}

async function run(t: TestContext, target: Target, level: Level, dataDir: string): Promise<void> {
  const receiver = await startReceiver();
  const h = new Harness(dataDir, receiver, target, sourceTree());
  try {
    await h.setup();
    await scenarios(t, h, level);
  } finally {
    await h.ferry?.kill();
    await receiver.close();
  }
}

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

test('localfs: every operation resumes after a crash at every point', { timeout: 900_000, skip: cliMissing() ?? undefined }, async (t) => {
  const dataDir = tmp('ferry-resume-');
  try {
    await run(t, { element: 'localfs', configuration: { root: 'r' }, localRoot: (d) => path.join(d, 'files', 'r') }, ON_POSTGRES ? 'core' : 'full', dataDir);
  } finally {
    await dropProcessSchema(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// On PostgreSQL (resume.postgres.test.ts) only the store differs, and what SFTP adds is element
// code that resume.test.ts runs on SQLite: the scenario is not registered there at all.
if (!ON_POSTGRES) test('sftp (real sshd): operations resume after a crash', { timeout: 900_000, skip: cliMissing() ?? undefined }, async (t) => {
  const why = await whySshdUnavailable();
  if (why) return t.skip(why);
  const sshd: TestSshd | null = await startSshd();
  if (!sshd) return t.skip('sshd could not start');
  const dataDir = tmp('ferry-resume-sftp-');
  try {
    await run(t, { element: 'sftp', configuration: sshd.config, localRoot: () => sshd.home }, 'files', dataDir);
  } finally {
    await sshd.stop();
    await dropProcessSchema(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('amazons3 (s3rver): operations resume after a crash', { timeout: 900_000, skip: cliMissing() ?? undefined }, async (t) => {
  const s3: S3TestServer | null = await startS3();
  if (!s3) return t.skip('s3rver could not start');
  const dataDir = tmp('ferry-resume-s3-');
  try {
    const extra = async (t2: TestContext, h: Harness) =>
      t2.test('multipart upload, crash after its first part: the re-run aborts the stale upload', async () => {
        const big = crypto.randomBytes(20 * 1024 * 1024 + 5);
        s3.resetTraffic();
        const hook = await h.crashing(['part-uploaded'], (headers) =>
          h.call('/files?path=/multi/big.bin', { method: 'POST', headers, body: multipartFile(big, 'big.bin') }),
        );
        completed(hook);
        const res = await h.call('/files?path=/multi/big.bin');
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(big), 'uploaded bytes differ');
        const starts = s3.traffic().requests.filter((r) => r.method === 'POST' && /(^|&)uploads(=|&|$)/.test(r.query));
        const aborts = s3.traffic().requests.filter((r) => r.method === 'DELETE' && /uploadId=/.test(r.query));
        assert.ok(starts.length >= 2, 'both runs upload in parts');
        assert.ok(aborts.length >= 1, "the re-run asks S3 to abort the crashed run's upload");
        h.assertSpoolEmpty();
      });
    const s3Extra = async (t2: TestContext, h: Harness) => {
      await extra(t2, h);
      await t2.test('multipart upload, crash between creating it and journaling its id: the re-run looks for it by key', async () => {
        const big = crypto.randomBytes(20 * 1024 * 1024 + 3);
        s3.resetTraffic();
        h.logs = '';
        const hook = await h.crashing(['multipart-created'], (headers) =>
          h.call('/files?path=/window/big.bin', { method: 'POST', headers, body: multipartFile(big, 'big.bin') }),
        );
        completed(hook);
        const res = await h.call('/files?path=/window/big.bin');
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(big), 'uploaded bytes differ');
        const requests = s3.traffic().requests;
        const starts = requests.filter((r) => r.method === 'POST' && /(^|&)uploads(=|&|$)/.test(r.query));
        assert.ok(starts.length >= 2, 'the crashed run created a multipart upload, and so did the re-run');
        // The journal had the intent but no id: the re-run asks S3 for the key's uploads.
        const listings = requests.filter((r) => r.method === 'GET' && /(^|&)uploads(=|&|$)/.test(r.query) && /prefix=window%2Fbig\.bin/.test(r.query));
        assert.equal(listings.length, 1, `ListMultipartUploads for the key: ${JSON.stringify(requests.filter((r) => r.method === 'GET').map((r) => r.query))}`);
        // s3rver has no ListMultipartUploads (501 NotImplemented): the node says so, naming the key.
        assert.equal(listings[0].status, 501);
        assert.match(h.logs, /cannot list multipart uploads/);
        assert.match(h.logs, /window\/big\.bin/);
        h.assertSpoolEmpty();
      });
      await t2.test('folder move (copy + delete on S3), crash mid-way through its copy', async () => {
        await h.json('/folders/copy?path=/src', 'POST', { path: '/s3-move' });
        const hook = await h.crashing(['file-placed:5'], (headers) =>
          h.call('/folders/metadata?path=/s3-move', { method: 'PATCH', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ path: '/s3-moved' }) }),
        );
        completed(hook);
        await h.assertTree('/s3-moved');
        assert.equal((await h.call('/folders/metadata?path=/s3-move')).status, 404);
        assert.deepEqual(eventPaths(hook), h.treePaths('/s3-moved'));
      });
    };
    await run(t, { element: 'amazons3', configuration: s3.config, localRoot: () => null, extra: s3Extra }, ON_POSTGRES ? 'extra' : 'core', dataDir);
  } finally {
    await s3.stop();
    await dropProcessSchema(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
