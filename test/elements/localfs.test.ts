/**
 * The localfs element: the shared conformance suite on a temp base folder, then what only a
 * local file system has — symbolic links trying to lead out of the root, root validation, and
 * the atomic write.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Element, Entry } from '../../src/elements/element.js';
import { localfs } from '../../src/elements/localfs/index.js';
import { isFerryError } from '../../src/errors.js';
import { readAll, rejectsWith, runElementConformance, streamOf } from './conformance.js';

const context = (base: string) => ({ localfsBase: base, backendTimeoutMs: 5000 });

runElementConformance('localfs conformance', async () => {
  const base = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-'));
  const element = localfs.create({ root: 'instance' }, context(base));
  await element.ping();
  return { element, cleanup: () => rm(base, { recursive: true, force: true }) };
});

async function collect(entries: AsyncIterable<Entry>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of entries) out.push(e.path);
  return out.sort();
}

describe('localfs definition and root', () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-root-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('is element 1, key localfs, with a required root and the common keys', () => {
    assert.equal(localfs.id, 1);
    assert.equal(localfs.key, 'localfs');
    assert.equal(localfs.name, 'Local Filesystem');
    assert.equal(localfs.hub, 'documents');
    const root = localfs.configuration.find((c) => c.key === 'root');
    assert.equal(root?.required, true);
    assert.ok(localfs.configuration.some((c) => c.key === 'event.notification.callback.url'));
  });

  for (const bad of ['', '   ', '../x', 'a/../../x', '..', '/etc', '/', 'a\\..\\b', 'C:\\x', 'a\u0000b', '.', './']) {
    it(`refuses root ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => localfs.create({ root: bad }, context(base)),
        (e: unknown) => isFerryError(e, 'invalid') && /root/.test(e.message),
      );
    });
  }

  it('refuses a missing root', () => {
    assert.throws(() => localfs.create({}, context(base)), (e: unknown) => isFerryError(e, 'invalid'));
  });

  it('create() does not touch the disk; ping creates the root (and the base)', async () => {
    const nestedBase = path.join(base, 'not-yet');
    const element = localfs.create({ root: 'team/docs' }, context(nestedBase));
    assert.equal(existsSync(nestedBase), false);
    await element.ping();
    assert.equal(existsSync(path.join(nestedBase, 'team', 'docs')), true);
    await element.close();
  });

  it('a root reached through a symlink out of the base is refused at ping', async () => {
    const outside = await mkdtemp(path.join(os.tmpdir(), 'ferry-outside-'));
    try {
      await symlink(outside, path.join(base, 'escape'));
      const element = localfs.create({ root: 'escape/inner' }, context(base));
      await rejectsWith(element.ping(), 'backend');
      assert.deepEqual(await readdir(outside), [], 'nothing may be created outside the base');
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('the root itself cannot be removed, moved or copied', async () => {
    const element = localfs.create({ root: 'fixed' }, context(base));
    await element.ping();
    await rejectsWith(element.remove('/'), 'invalid');
    await rejectsWith(element.move('/', '/x'), 'invalid');
    await rejectsWith(element.copy('/', '/x'), 'invalid');
    assert.equal((await element.stat('/'))?.directory, true);
  });

  it('non-canonical paths are refused even if the service let one through', async () => {
    const element = localfs.create({ root: 'canon' }, context(base));
    await element.ping();
    for (const p of ['../x', '/../x', '/a/../../x', 'relative', '/a//b', '/a/./b', '/a/']) {
      await rejectsWith(element.stat(p), 'invalid');
      await rejectsWith(element.write(p, streamOf(Buffer.from('x'))), 'invalid');
    }
  });
});

describe('localfs symbolic links never lead out of the root', () => {
  let base: string;
  let outside: string;
  let rootDir: string;
  let element: Element;
  const secret = 'outside secret bytes';

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-links-'));
    outside = await mkdtemp(path.join(os.tmpdir(), 'ferry-outside-'));
    await writeFile(path.join(outside, 'secret.txt'), secret);
    await mkdir(path.join(outside, 'sub'));
    await writeFile(path.join(outside, 'sub', 'deep.txt'), secret);
    element = localfs.create({ root: 'inst' }, context(base));
    await element.ping();
    rootDir = path.join(base, 'inst');
    await mkdir(path.join(base, 'sibling'));
    await writeFile(path.join(base, 'sibling', 'theirs.txt'), 'sibling data');
    await writeFile(path.join(rootDir, 'real.txt'), 'mine');
    await mkdir(path.join(rootDir, 'folder'));
    // Links a host user might have left in the root.
    await symlink(outside, path.join(rootDir, 'to-outside'));
    await symlink(path.join(outside, 'secret.txt'), path.join(rootDir, 'secret-link.txt'));
    await symlink('/etc', path.join(rootDir, 'etc'));
    await symlink('../sibling', path.join(rootDir, 'sibling'));
    await symlink('/etc/passwd', path.join(rootDir, 'folder', 'passwd'));
    await symlink(path.join(outside, 'does-not-exist'), path.join(rootDir, 'dangling'));
  });
  after(async () => {
    await element.close();
    await rm(base, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  /** The outside world is exactly as it was. */
  async function assertOutsideUntouched(): Promise<void> {
    assert.equal(await readFile(path.join(outside, 'secret.txt'), 'utf8'), secret);
    assert.equal(await readFile(path.join(outside, 'sub', 'deep.txt'), 'utf8'), secret);
    assert.deepEqual((await readdir(outside)).sort(), ['secret.txt', 'sub']);
    assert.deepEqual(await readdir(path.join(outside, 'sub')), ['deep.txt']);
    assert.equal(await readFile(path.join(base, 'sibling', 'theirs.txt'), 'utf8'), 'sibling data');
    assert.deepEqual(await readdir(path.join(base, 'sibling')), ['theirs.txt']);
    assert.ok((await readFile('/etc/passwd', 'utf8')).length > 0);
  }

  it('list and walk do not show symlinks', async () => {
    assert.deepEqual(await collect(element.list('/')), ['/folder', '/real.txt']);
    assert.deepEqual(await collect(element.list('/folder')), []);
    assert.deepEqual(await collect(element.walk!('/')), ['/folder', '/real.txt']);
  });

  it('stat treats symlinks, and anything behind them, as absent', async () => {
    for (const p of ['/to-outside', '/to-outside/secret.txt', '/secret-link.txt', '/etc', '/etc/passwd', '/sibling/theirs.txt', '/folder/passwd', '/dangling']) {
      assert.equal(await element.stat(p), null, p);
    }
  });

  it('read through a symlink is not_found', async () => {
    for (const p of ['/secret-link.txt', '/to-outside/secret.txt', '/etc/passwd', '/sibling/theirs.txt', '/folder/passwd']) {
      await rejectsWith(element.read(p), 'not_found');
    }
  });

  it('list through a symlinked folder is not_found', async () => {
    for (const p of ['/to-outside', '/etc', '/sibling', '/to-outside/sub']) {
      await rejectsWith(collect(element.list(p)), 'not_found');
      await rejectsWith(collect(element.walk!(p)), 'not_found');
    }
  });

  it('write and mkdir through a symlinked folder are refused', async () => {
    for (const p of ['/to-outside/new.txt', '/to-outside/secret.txt', '/to-outside/sub/deep.txt', '/sibling/theirs.txt', '/etc/ferry-test', '/dangling/x.txt', '/to-outside/made/deep.txt']) {
      await assert.rejects(element.write(p, streamOf(Buffer.from('overwritten'))), (e: unknown) => isFerryError(e), p);
    }
    for (const p of ['/to-outside/newdir', '/to-outside/a/b', '/sibling/x', '/dangling']) {
      await assert.rejects(element.mkdir(p), (e: unknown) => isFerryError(e), p);
    }
    await assertOutsideUntouched();
    assert.equal(existsSync('/etc/ferry-test'), false);
  });

  it('write over a symlink replaces the link, not its target', async () => {
    await element.write('/secret-link.txt', streamOf(Buffer.from('replaced')));
    assert.equal((await readAll(await element.read('/secret-link.txt'))).toString(), 'replaced');
    await assertOutsideUntouched();
    // Put the link back for the other tests.
    await rm(path.join(rootDir, 'secret-link.txt'));
    await symlink(path.join(outside, 'secret.txt'), path.join(rootDir, 'secret-link.txt'));
  });

  it('remove through a symlink is not_found and deletes nothing outside', async () => {
    for (const p of ['/to-outside', '/to-outside/secret.txt', '/to-outside/sub', '/sibling', '/sibling/theirs.txt', '/etc', '/secret-link.txt']) {
      await rejectsWith(element.remove(p), 'not_found');
    }
    await assertOutsideUntouched();
  });

  it('removing a folder that holds a link removes the link only', async () => {
    await mkdir(path.join(rootDir, 'holder'));
    await writeFile(path.join(rootDir, 'holder', 'own.txt'), 'own');
    await symlink(outside, path.join(rootDir, 'holder', 'link-dir'));
    await symlink(path.join(outside, 'secret.txt'), path.join(rootDir, 'holder', 'link-file'));
    await element.remove('/holder');
    assert.equal(existsSync(path.join(rootDir, 'holder')), false);
    await assertOutsideUntouched();
  });

  it('copy and move never read or write through a link', async () => {
    // Sources behind links are absent.
    await rejectsWith(element.copy('/to-outside', '/stolen'), 'not_found');
    await rejectsWith(element.copy('/secret-link.txt', '/stolen.txt'), 'not_found');
    await rejectsWith(element.move('/to-outside/secret.txt', '/stolen.txt'), 'not_found');
    await rejectsWith(element.move('/sibling', '/stolen'), 'not_found');
    // Targets behind links are refused.
    await assert.rejects(element.copy('/real.txt', '/to-outside/planted.txt'), (e: unknown) => isFerryError(e));
    await assert.rejects(element.move('/real.txt', '/sibling/planted.txt'), (e: unknown) => isFerryError(e));
    // A target occupied by a link is taken.
    await rejectsWith(element.copy('/real.txt', '/secret-link.txt'), 'conflict');
    await rejectsWith(element.move('/real.txt', '/to-outside'), 'conflict');
    assert.equal(existsSync(path.join(rootDir, 'stolen')), false);
    assert.equal(existsSync(path.join(rootDir, 'stolen.txt')), false);
    assert.equal(await readFile(path.join(rootDir, 'real.txt'), 'utf8'), 'mine');
    await assertOutsideUntouched();
  });

  it('copying a folder skips the links inside it', async () => {
    await mkdir(path.join(rootDir, 'mixed', 'inner'), { recursive: true });
    await writeFile(path.join(rootDir, 'mixed', 'inner', 'file.txt'), 'inner');
    await symlink(outside, path.join(rootDir, 'mixed', 'out-dir'));
    await symlink(path.join(outside, 'secret.txt'), path.join(rootDir, 'mixed', 'inner', 'out-file'));
    await element.copy('/mixed', '/mixed-copy');
    assert.deepEqual(await collect(element.walk!('/mixed-copy')), ['/mixed-copy/inner', '/mixed-copy/inner/file.txt']);
    assert.deepEqual((await readdir(path.join(rootDir, 'mixed-copy'), { recursive: true })).sort(), ['inner', 'inner/file.txt']);
    await element.move('/mixed', '/mixed-moved');
    await element.remove('/mixed-moved');
    await element.remove('/mixed-copy');
    await assertOutsideUntouched();
  });
});

describe('localfs write is atomic', () => {
  let base: string;
  let element: Element;
  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-atomic-'));
    element = localfs.create({ root: 'r' }, context(base));
    await element.ping();
  });
  after(async () => {
    await element.close();
    await rm(base, { recursive: true, force: true });
  });

  it('a failed upload leaves the old file intact and no temp file behind', async () => {
    await element.write('/doc.txt', streamOf(Buffer.from('old version')));
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(100_000, 1));
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(element.write('/doc.txt', failing), /client went away/);
    assert.equal(await readFile(path.join(base, 'r', 'doc.txt'), 'utf8'), 'old version');
    assert.deepEqual(await readdir(path.join(base, 'r')), ['doc.txt']);
  });

  it('a failed upload into new folders removes the folders it created, and only those', async () => {
    const failing = () =>
      new Readable({
        read() {
          this.push(Buffer.alloc(10_000, 1));
          this.destroy(new Error('client went away'));
        },
      });
    await element.mkdir('/kept');
    await assert.rejects(element.write('/kept/new/deeper/file.bin', failing()), /client went away/);
    assert.deepEqual(await readdir(path.join(base, 'r', 'kept')), [], 'no folder of the failed upload stays');
    // A folder created meanwhile by someone else's file stays, with that file.
    await element.write('/kept/shared/other.txt', streamOf(Buffer.from('theirs')));
    await assert.rejects(element.write('/kept/shared/sub/file.bin', failing()), /client went away/);
    assert.deepEqual(await readdir(path.join(base, 'r', 'kept', 'shared')), ['other.txt']);
  });

  it('a file cannot replace a folder, nor a folder a file', async () => {
    await element.mkdir('/dir');
    await rejectsWith(element.write('/dir', streamOf(Buffer.from('x'))), 'invalid');
    await element.write('/file.txt', streamOf(Buffer.from('x')));
    await rejectsWith(element.mkdir('/file.txt'), 'conflict');
    await rejectsWith(element.write('/file.txt/under', streamOf(Buffer.from('x'))), 'invalid');
    await rejectsWith(collect(element.list('/file.txt')), 'invalid');
  });

  it('messages name instance paths, never host paths', async () => {
    try {
      await element.read('/no/such/file.txt');
      assert.fail('read should fail');
    } catch (e) {
      assert.ok(isFerryError(e, 'not_found'));
      assert.ok(!e.message.includes(base), e.message);
      assert.match(e.message, /\/no\/such\/file\.txt/);
    }
  });

  it('stray upload temp files and special files are invisible', async () => {
    const dir = path.join(base, 'r', 'specials');
    await mkdir(dir);
    await writeFile(path.join(dir, '.ferry-upload-0123456789abcdef.tmp'), 'half an upload');
    await writeFile(path.join(dir, 'normal.txt'), 'ok');
    execFileSync('mkfifo', [path.join(dir, 'pipe')]);
    assert.deepEqual(await collect(element.list('/specials')), ['/specials/normal.txt']);
    assert.equal(await element.stat('/specials/pipe'), null);
    await rejectsWith(element.read('/specials/pipe'), 'not_found'); // and does not hang on the FIFO
    await element.copy('/specials', '/specials-copy');
    assert.deepEqual(await readdir(path.join(base, 'r', 'specials-copy')), ['normal.txt']);
  });

  it('copies a wide and deep tree exactly', async () => {
    const src = path.join(base, 'r', 'wide');
    const expected: string[] = [];
    for (let d = 0; d < 20; d++) {
      const folder = path.join(src, `d${d}`, 'x'.repeat(d % 5), `e${d}`);
      await mkdir(folder, { recursive: true });
      for (let f = 0; f < 15; f++) {
        await writeFile(path.join(folder, `f${f}.txt`), `${d}/${f}`);
        expected.push(path.relative(src, path.join(folder, `f${f}.txt`)));
      }
    }
    await element.copy('/wide', '/wide-copy');
    const copied = (await readdir(path.join(base, 'r', 'wide-copy'), { recursive: true, withFileTypes: true }))
      .filter((d) => d.isFile())
      .map((d) => path.relative(path.join(base, 'r', 'wide-copy'), path.join(d.parentPath ?? d.path, d.name)));
    assert.deepEqual(copied.sort(), expected.sort());
    for (const rel of expected) {
      assert.equal(await readFile(path.join(base, 'r', 'wide-copy', rel), 'utf8'), await readFile(path.join(src, rel), 'utf8'));
    }
    await rejectsWith(element.copy('/wide', '/wide-copy'), 'conflict');
    await rejectsWith(element.copy('/wide', '/wide/inside'), 'invalid');
  });

  it('storage reports the file system', async () => {
    const s = await element.storage();
    assert.ok(s.total !== null && s.total > 0);
    assert.ok(s.used !== null && s.used >= 0);
  });
});
