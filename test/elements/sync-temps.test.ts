/**
 * Temp files of crashed synchronous writes are removed at the next start (issue 25). A sync
 * request has no re-run: when the node dies mid-upload, the temp file beside the target is
 * found through the node's registry of writes in flight (src/documents/sync-temps.ts), not by
 * waiting for a listing to find it an hour later.
 *
 * - The registry itself: it stays small however many writes come and go (also while one stays
 *   open), and at start only files of dead runs of this host are taken.
 * - `ferry serve` killed with SIGKILL in the middle of a slowly streamed sync upload, on localfs
 *   and on SFTP (real sshd): after a restart on the same data dir, with no request at all, the
 *   temp file is gone within seconds — and temp files of other writers (another run's tag, an
 *   untagged one) are left alone.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { COMPACT_BYTES, SyncTempRegistry, leftovers, openEntries } from '../../src/documents/sync-temps.js';
import { ORG_SECRET, PLATFORM_AUTH, USER_SECRET } from '../helpers/server.js';
import { cliMissing, dropProcessSchema, freePort, startFerryProcess, type FerryProcess } from '../helpers/process.js';
import { startSshd, whySshdUnavailable } from '../helpers/sshd.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

test('the registry stays small while writes come and go, and keeps what is open', async () => {
  const dir = tmp('ferry-sync-temps-');
  try {
    const registry = new SyncTempRegistry(dir);
    for (let i = 0; i < 5000; i++) registry.enter({ instanceId: 7, path: `/folder/${i}`, tree: false })();
    assert.ok(fs.statSync(registry.file).size <= COMPACT_BYTES, `idle registry is ${fs.statSync(registry.file).size} bytes`);

    // A node that is never idle: one long write stays open while thousands of others end.
    const long = registry.enter({ instanceId: 9, path: '/copy target', tree: true });
    for (let i = 0; i < 20_000; i++) registry.enter({ instanceId: 7, path: `/folder/${i}`, tree: false })();
    const text = fs.readFileSync(registry.file, 'utf8');
    assert.ok(Buffer.byteLength(text) <= 4 * COMPACT_BYTES + 100, `busy registry is ${Buffer.byteLength(text)} bytes`);
    assert.deepEqual(openEntries(text)[0], { instanceId: 9, path: '/copy target', tree: true }, 'the open entry survives compaction');
    // Ends ride with the next entry, or are written within a second on an idle node.
    await sleep(1200);
    assert.deepEqual(openEntries(fs.readFileSync(registry.file, 'utf8')), [{ instanceId: 9, path: '/copy target', tree: true }]);
    long();
    await sleep(1200);
    assert.deepEqual(openEntries(fs.readFileSync(registry.file, 'utf8')), []);
    registry.close();
    assert.equal(fs.existsSync(registry.file), false, 'a clean stop with nothing open leaves no file');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('at start only registries of dead runs of this host are swept', () => {
  const dir = tmp('ferry-sync-temps-');
  try {
    const live = new SyncTempRegistry(dir);
    live.enter({ instanceId: 1, path: '/live', tree: false });
    const host = path.basename(live.file).split('~')[0];
    // A process that has exited: its pid names a dead run.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    fs.writeFileSync(path.join(dir, `${host}~${dead}~123~0badcafe.log`), '+1 3 f "/up"\n+2 3 t "/copy"\n-1\n');
    // Our parent is alive, and started at the tick /proc says: its run is not swept.
    const parentStart = fs.readFileSync(`/proc/${process.ppid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
    fs.writeFileSync(path.join(dir, `${host}~${process.ppid}~${parentStart}~1badcafe.log`), '+1 3 f "/parent"\n');
    // The same pid, but another start tick: the pid was reused, the run is dead.
    fs.writeFileSync(path.join(dir, `${host}~${process.ppid}~1~2badcafe.log`), '+1 3 f "/reused"\n');
    // Another host's run: this node cannot tell whether it lives.
    fs.writeFileSync(path.join(dir, `other-host~${dead}~123~3badcafe.log`), '+1 3 f "/elsewhere"\n');

    const found = leftovers(dir).sort((a, b) => a.tag.localeCompare(b.tag));
    assert.deepEqual(
      found.map((l) => [l.tag, l.sites]),
      [
        ['s0badcafe-', [{ instanceId: 3, path: '/copy', tree: true }]],
        ['s2badcafe-', [{ instanceId: 3, path: '/reused', tree: false }]],
      ],
    );
    live.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Where the scenario writes, as the test sees it on disk. */
interface Backend {
  element: string;
  configuration: Record<string, string>;
  /** The host folder that is the instance root. */
  root: (dataDir: string) => string;
}

/**
 * Starts a sync upload of `/slow/big.bin` whose body keeps coming, waits until its temp file is
 * on disk, kills the server, and resolves with the temp file's path.
 */
async function uploadUntilTemp(ferry: FerryProcess, port: number, auth: string, folder: string): Promise<string> {
  const boundary = `ferry${crypto.randomBytes(8).toString('hex')}`;
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/elements/api-v2/hubs/documents/files?path=%2Fslow%2Fbig.bin',
    headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
  });
  req.on('error', () => undefined); // the server dies under it
  req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const deadline = Date.now() + 15_000;
  let temp: string | undefined;
  while (!temp) {
    // The body keeps arriving, slowly: the upload is in the middle of its temp file.
    req.write(crypto.randomBytes(16 * 1024));
    temp = fs.existsSync(folder) ? fs.readdirSync(folder).find((n) => n.startsWith('.ferry-upload-')) : undefined;
    if (Date.now() > deadline) assert.fail(`no temp file appeared in ${folder}: ${ferry.stderr()}`);
    await sleep(20);
  }
  await ferry.kill();
  req.destroy();
  return path.join(folder, temp);
}

async function crashedUpload(t: TestContext, backend: Backend): Promise<void> {
  const dataDir = tmp('ferry-sync-crash-');
  const port = await freePort();
  const env = { FERRY_USER_SECRET: USER_SECRET, FERRY_ORG_SECRET: ORG_SECRET, FERRY_EGRESS_ALLOW: '127.0.0.1/32' };
  let ferry = await startFerryProcess({ dataDir, port, env });
  try {
    const res = await fetch(`${ferry.base}/instances`, {
      method: 'POST',
      headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ element: { key: backend.element }, name: 'sync-crash', configuration: backend.configuration }),
    });
    const instance: any = await res.json();
    assert.equal(res.status, 200, JSON.stringify(instance));
    const auth = `User ${USER_SECRET}, Element ${instance.token}`;
    const folder = path.join(backend.root(dataDir), 'slow');

    const temp = await uploadUntilTemp(ferry, port, auth, folder);
    assert.match(path.basename(temp), /^\.ferry-upload-s[0-9a-f]{8}-[0-9a-f]{16}\.tmp$/, 'a sync temp name carries its run');
    assert.ok(fs.existsSync(temp), 'the crash left the temp file');
    // Temp files that are not the dead run's: another run's (alive, or unknown) and an untagged one.
    const others = ['.ferry-upload-s0badcafe-0123456789abcdef.tmp', '.ferry-upload-0123456789abcdef.tmp'].map((n) => path.join(folder, n));
    for (const other of others) fs.writeFileSync(other, 'not the dead run\'s');

    const restarted = Date.now();
    ferry = await startFerryProcess({ dataDir, port, env });
    const answering = Date.now();
    // No request at all: the start itself removes it.
    while (fs.existsSync(temp) && Date.now() - restarted < 10_000) await sleep(25);
    assert.equal(fs.existsSync(temp), false, 'the temp file of the crashed upload is removed after the start');
    t.diagnostic(`${backend.element}: temp file gone ${Date.now() - restarted} ms after the restart began, ${Math.max(0, Date.now() - answering)} ms after the node answered`);
    for (const other of others) assert.ok(fs.existsSync(other), `${path.basename(other)} is not the dead run's and stays`);
    assert.equal(fs.existsSync(path.join(folder, 'big.bin')), false, 'nothing appeared under the final name');
    // The dead run's registry is gone once swept; only the new run's remains.
    const deadline = Date.now() + 5000;
    while (fs.readdirSync(path.join(dataDir, 'sync-temps')).length > 1 && Date.now() < deadline) await sleep(25);
    assert.equal(fs.readdirSync(path.join(dataDir, 'sync-temps')).length, 1, 'the swept registry is deleted');
  } finally {
    await ferry.kill();
    await dropProcessSchema(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

test('localfs: SIGKILL mid sync upload, restart: its temp file is removed at start', { timeout: 60_000, skip: cliMissing() ?? undefined }, async (t) => {
  await crashedUpload(t, { element: 'localfs', configuration: { root: 'r' }, root: (d) => path.join(d, 'files', 'r') });
});

test('sftp (real sshd): SIGKILL mid sync upload, restart: its temp file is removed after start', { timeout: 60_000, skip: cliMissing() ?? undefined }, async (t) => {
  const why = await whySshdUnavailable();
  if (why) return t.skip(why);
  const sshd = await startSshd();
  if (!sshd) return t.skip('sshd could not start');
  try {
    await crashedUpload(t, { element: 'sftp', configuration: sshd.config, root: () => sshd.home });
  } finally {
    await sshd.stop();
  }
});
