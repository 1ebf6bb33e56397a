/**
 * Issue 21 on SFTP (a real OpenSSH sshd on loopback): concurrent uploads into the same new
 * nested folder, some or all of which fail, leave no orphan folder and no partial file, and a
 * failing upload never pulls the folder from under one still running. What is on the server is
 * read from its disk (the test sshd serves a local folder).
 *
 * The element tests control each body, so the order of events is exact: every upload is
 * writing (its temp file exists on the server) before any of them ends. The HTTP tests do the
 * same through Ferry's upload route with clients whose multipart body breaks off mid-file, as a
 * client that goes away does, and check what those clients are answered.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEgressPolicy } from '../../src/async/egress.js';
import type { Element } from '../../src/elements/element.js';
import { sftp } from '../../src/elements/sftp/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { holdUpload } from '../helpers/uploads.js';

const server = await startSshd();
const skip = server === null ? `no test sshd: ${(await whySshdUnavailable()) ?? 'it failed to start'}` : false;
const sshd = server as TestSshd;

after(async () => {
  await server?.stop();
});

/** A fresh folder in the server home, owned by the SFTP user, as a home_directory. */
async function freshHome(): Promise<string> {
  const dir = await mkdtemp(path.join(sshd.home, 'race-'));
  const owner = await stat(sshd.home);
  await chown(dir, owner.uid, owner.gid);
  return dir;
}

const temps = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.ferry-upload-')) : []);

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await sleep(10);
  assert.ok(check(), `timed out waiting for ${what}`);
}

describe('sftp: concurrent uploads into one new nested folder (element)', { skip }, () => {
  let home = '';
  let element: Element;
  before(async () => {
    home = await freshHome();
    element = sftp.create({ ...sshd.config, home_directory: home }, { localfsBase: os.tmpdir(), backendTimeoutMs: 10_000, egress: createEgressPolicy(['0.0.0.0/0', '::/0']) });
    await element.ping();
  });
  after(async () => {
    await element?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** Starts uploads whose bodies the test controls; resolves once each one's temp file is on the server. */
  async function startUploads(folder: string, names: string[]) {
    const uploads = [];
    for (const name of names) {
      const before = temps(path.join(home, folder)).length;
      const body = new PassThrough();
      // As the upload route does (routes/documents.ts): the body may break before the element
      // attaches its pipeline (the temp file is on the server before the OPEN reply is read);
      // the element then sees the errored stream.
      body.on('error', () => {});
      const done = element.write(`/${folder}/${name}`, body).then(
        () => null,
        (error: unknown) => error,
      );
      body.write('partial ');
      await until(() => temps(path.join(home, folder)).length > before, `the temp file of ${name}`);
      uploads.push({ name, body, done });
    }
    return uploads;
  }

  it('all fail, one after another: the new folders go with the last one, no temp file is left', async () => {
    const [a, b, c] = await startUploads('all/deep/er', ['a.bin', 'b.bin', 'c.bin']);
    a.body.destroy(new Error('client went away'));
    assert.ok(await a.done);
    assert.ok(existsSync(path.join(home, 'all/deep/er')), 'the folder stays while others write into it');
    assert.equal(temps(path.join(home, 'all/deep/er')).length, 2, 'the failed upload left no temp file');
    c.body.destroy(new Error('client went away'));
    assert.ok(await c.done);
    b.body.destroy(new Error('client went away'));
    assert.ok(await b.done);
    assert.equal(existsSync(path.join(home, 'all')), false, 'no orphan folder');
  });

  it('all fail at the same moment: no folder and no partial file is left', async () => {
    const uploads = await startUploads('burst/deep/er', ['a.bin', 'b.bin', 'c.bin', 'd.bin']);
    for (const u of uploads) u.body.destroy(new Error('client went away'));
    for (const u of uploads) assert.ok(await u.done, `${u.name} failed`);
    assert.equal(existsSync(path.join(home, 'burst')), false, 'no orphan folder');
  });

  it('the creator fails, one other succeeds, the rest fail: exactly the successful file is left, whole', async () => {
    const [a, b, c] = await startUploads('one/deep/er', ['a.bin', 'b.bin', 'c.bin']);
    a.body.destroy(new Error('client went away'));
    assert.ok(await a.done);
    b.body.end('and the rest');
    assert.equal(await b.done, null);
    c.body.destroy(new Error('client went away'));
    assert.ok(await c.done);
    assert.deepEqual(readdirSync(path.join(home, 'one/deep/er')), ['b.bin']);
    assert.equal(readFileSync(path.join(home, 'one/deep/er/b.bin'), 'utf8'), 'partial and the rest');
    assert.deepEqual(readdirSync(path.join(home, 'one')), ['deep']);
  });

  it('the creator succeeds, the others fail: exactly its file is left', async () => {
    const [a, b, c] = await startUploads('two/deep/er', ['a.bin', 'b.bin', 'c.bin']);
    b.body.destroy(new Error('client went away'));
    a.body.end('done');
    c.body.destroy(new Error('client went away'));
    assert.equal(await a.done, null);
    assert.ok(await b.done);
    assert.ok(await c.done);
    assert.deepEqual(readdirSync(path.join(home, 'two/deep/er')), ['a.bin']);
  });

  it('uploads that start while failed ones remove the folder are not disturbed', async () => {
    // Rounds of uploads into one new folder: in each, the failing ones end while the next
    // round's uploads start. Only uploads meant to fail may fail, and what is left at the end
    // is exactly the files of the successful ones.
    const expected = new Map<string, Buffer>();
    const unexpected: string[] = [];
    let previous: Array<Promise<void>> = [];
    for (let round = 0; round < 6; round++) {
      const current: Array<Promise<void>> = [];
      for (let i = 0; i < 4; i++) {
        const name = `r${round}-${i}.bin`;
        const ok = round % 3 === 2 && i === 0;
        const body = new PassThrough();
        body.on('error', () => {}); // it may break before the element reads it: the upload fails then
        const data = randomBytes(20_000);
        const done = element.write(`/churn/deep/${name}`, body).then(
          () => {
            if (ok) expected.set(name, data);
            else unexpected.push(`${name} succeeded`);
          },
          (e: unknown) => {
            if (ok) unexpected.push(`${name} failed: ${String(e)}`);
          },
        );
        body.write(data.subarray(0, 10_000));
        setImmediate(() => (ok ? body.end(data.subarray(10_000)) : body.destroy(new Error('client went away'))));
        current.push(done);
      }
      await Promise.all(previous);
      previous = current;
    }
    await Promise.all(previous);
    assert.deepEqual(unexpected, []);
    const left = existsSync(path.join(home, 'churn/deep')) ? readdirSync(path.join(home, 'churn/deep')).sort() : [];
    assert.deepEqual(left, [...expected.keys()].sort(), 'exactly the successful files, no temp file');
    for (const [name, data] of expected) assert.ok(readFileSync(path.join(home, 'churn/deep', name)).equals(data), `${name} is whole`);
  });
});

describe('sftp: concurrent uploads into one new nested folder (HTTP)', { skip }, () => {
  let home = '';
  let srv: TestServer;
  let auth = '';
  before(async () => {
    home = await freshHome();
    srv = await startTestServer({ FERRY_EGRESS_ALLOW: '127.0.0.1/32' });
    auth = (await srv.instance('sftp', { ...sshd.config, home_directory: home })).auth;
  });
  after(async () => {
    await srv?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  async function startAll(folder: string, count: number) {
    const uploads = Array.from({ length: count }, (_, i) => {
      const data = randomBytes(64 * 1024);
      return { name: `f${i}.bin`, data, ...holdUpload(srv.base, auth, `/${folder}/f${i}.bin`, data.subarray(0, 32 * 1024), data.subarray(32 * 1024)) };
    });
    await until(() => temps(path.join(home, folder)).length === count, 'every upload to be writing on the server');
    return uploads;
  }

  it('several uploads that all break off mid-file: each is answered 400, no folder and no partial file is left', async () => {
    const uploads = await startAll('web/a/b', 4);
    for (const u of uploads) u.finish(false);
    for (const u of uploads) assert.equal((await u.answer).status, 400, `${u.name}: ${(await u.answer).body}`);
    assert.equal(existsSync(path.join(home, 'web')), false, 'no orphan folder');
  });

  it('one completes while the others break off: 200 for it, 400 for them, exactly its file is left', async () => {
    const uploads = await startAll('mixed/a/b', 4);
    uploads.forEach((u, i) => u.finish(i === 2));
    for (const [i, u] of uploads.entries()) assert.equal((await u.answer).status, i === 2 ? 200 : 400, `${u.name}: ${(await u.answer).body}`);
    assert.deepEqual(readdirSync(path.join(home, 'mixed/a/b')), ['f2.bin']);
    assert.ok(readFileSync(path.join(home, 'mixed/a/b/f2.bin')).equals(uploads[2].data), 'the file is whole');
    const hub = await fetch(`${srv.base}/hubs/documents/files?path=/mixed/a/b/f2.bin`, { headers: { authorization: auth } });
    assert.equal(hub.status, 200);
    assert.ok(Buffer.from(await hub.arrayBuffer()).equals(uploads[2].data));
  });
});
