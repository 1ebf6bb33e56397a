/**
 * The localfs element's side of crash recovery (issue 25), called directly: a resumed folder
 * copy completes a partial copy (keeping what is in place, removing its own temp files and no
 * one else's), a resumed write removes only its own job's temp files, and temp files are hidden
 * from listings — which remove those abandoned for an hour (a crashed sync request's).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Element, Entry } from '../../src/elements/element.js';
import { localfs } from '../../src/elements/localfs/index.js';
import { jobContext } from '../../src/documents/job.js';

const context = (base: string) => ({ localfsBase: base, backendTimeoutMs: 5000 });
const noJournal = { journalGet: async () => null, journalPut: async () => undefined };

async function all(it: AsyncIterable<Entry>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of it) out.push(e.path);
  return out.sort();
}

describe('localfs: resumed writes and copies, hidden and stale temp files', () => {
  let base: string;
  let root: string;
  let element: Element;
  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-resume-'));
    element = localfs.create({ root: 'r' }, context(base));
    await element.ping();
    root = path.join(base, 'r');
    await mkdir(path.join(root, 'src', 'sub'), { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(path.join(root, 'src', `f${i}.txt`), `file ${i} `.repeat(i + 1));
    await writeFile(path.join(root, 'src', 'sub', 'deep.txt'), 'deep');
  });
  after(async () => {
    await element.close();
    await rm(base, { recursive: true, force: true });
  });

  it('a resumed folder copy completes a partial copy and removes only its own temp files', async () => {
    const job = jobContext(41, 1, noJournal);
    await mkdir(path.join(root, 'dst'));
    await writeFile(path.join(root, 'dst', 'f3.txt'), readFileSync(path.join(root, 'src', 'f3.txt')));
    await writeFile(path.join(root, 'dst', '.ferry-upload-e41-00000000deadbeef.tmp'), 'half');
    await writeFile(path.join(root, 'dst', '.ferry-upload-e42-00000000deadbeef.tmp'), 'another job');
    await element.copy('/src', '/dst', { job, resume: true });
    const names = readdirSync(path.join(root, 'dst')).sort();
    assert.ok(!names.includes('.ferry-upload-e41-00000000deadbeef.tmp'), 'its own temp file is removed');
    assert.ok(names.includes('.ferry-upload-e42-00000000deadbeef.tmp'), "another job's temp file stays");
    for (let i = 0; i < 40; i++) {
      assert.ok(readFileSync(path.join(root, 'dst', `f${i}.txt`)).equals(readFileSync(path.join(root, 'src', `f${i}.txt`))));
    }
    assert.equal(readFileSync(path.join(root, 'dst', 'sub', 'deep.txt'), 'utf8'), 'deep');
    assert.deepEqual(await all(element.walk!("/dst")), (await all(element.walk!("/src"))).map((p) => p.replace('/src', '/dst')).sort());
  });

  it('without resume, a copy onto an existing folder is still refused', async () => {
    await assert.rejects(element.copy('/src', '/dst'), /already exists/);
  });

  it('a resumed write removes its own temp files beside the target', async () => {
    const job = jobContext(7, 1, noJournal);
    await mkdir(path.join(root, 'up'), { recursive: true });
    await writeFile(path.join(root, 'up', '.ferry-upload-e7-0000000000000001.tmp'), 'half');
    await element.write('/up/a.txt', Readable.from([Buffer.from('whole')]), { job, resume: true });
    assert.deepEqual(readdirSync(path.join(root, 'up')), ['a.txt']);
    assert.equal(readFileSync(path.join(root, 'up', 'a.txt'), 'utf8'), 'whole');
  });

  it('listings hide temp files and remove those abandoned for an hour', async () => {
    await mkdir(path.join(root, 'tmp'), { recursive: true });
    const fresh = path.join(root, 'tmp', '.ferry-upload-0123456789abcdef.tmp');
    const stale = path.join(root, 'tmp', '.ferry-upload-e9-fedcba9876543210.tmp');
    await writeFile(fresh, 'being written');
    await writeFile(stale, 'abandoned');
    const old = (Date.now() - 2 * 3600_000) / 1000;
    utimesSync(stale, old, old);
    await writeFile(path.join(root, 'tmp', 'visible.txt'), 'v');
    assert.deepEqual(await all(element.list('/tmp')), ['/tmp/visible.txt']);
    assert.ok(existsSync(fresh), 'a temp file written to recently stays');
    assert.ok(!existsSync(stale), 'an abandoned temp file is removed');
    assert.ok(statSync(path.join(root, 'tmp', 'visible.txt')).isFile());
  });
});
