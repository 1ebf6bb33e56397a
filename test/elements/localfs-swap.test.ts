/**
 * Issue 21: a symbolic link swapped in while a folder copy runs cannot make the copy read or
 * write outside the instance root. The copy's primitives (elements/localfs/tree.ts) get paths
 * the documents service confined before the copy started; here the swap happens in between —
 * a folder of the source or of the target, or one above them, replaced by a link to a folder
 * outside — and each primitive must refuse (ELOOP) without reading or creating anything there.
 * The primitives open folders without following links and check what they opened (Linux's
 * /proc/self/fd); elsewhere this test is skipped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyFilesSync, copyRegularFileSync, startFolderCopySync, TreeReader } from '../../src/elements/localfs/tree.js';

const skip = fs.existsSync('/proc/self/fd') ? false : 'needs /proc/self/fd (Linux)';

describe('localfs folder copy with a symbolic link swapped in', { skip }, () => {
  let base = '';
  let root = '';
  let outside = '';
  before(() => {
    base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-swap-')));
    root = path.join(base, 'root');
    outside = path.join(base, 'outside');
    fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'outside the root');
    fs.writeFileSync(path.join(outside, 'sub', 'secret.txt'), 'outside the root');
  });
  after(() => fs.rmSync(base, { recursive: true, force: true }));

  /** A fresh tree under the root: src/{a.txt, sub/b.txt} and an empty dst/. */
  function tree(name: string): string {
    const dir = path.join(root, name);
    fs.mkdirSync(path.join(dir, 'src', 'sub'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'dst'));
    fs.writeFileSync(path.join(dir, 'src', 'a.txt'), 'a');
    fs.writeFileSync(path.join(dir, 'src', 'sub', 'secret.txt'), 'inside');
    return dir;
  }

  /** Replaces folder `dir` with a symbolic link to `to` (what an attacker on the host does). */
  function swap(dir: string, to: string): void {
    fs.renameSync(dir, `${dir}.moved`);
    fs.symlinkSync(to, dir);
  }

  // ELOOP: a link on the way; ENOTDIR: the link itself opened as a folder without following it.
  const refused = (e: unknown) => ['ELOOP', 'ENOTDIR'].includes((e as { code?: string }).code ?? '');
  const outsideNames = () => fs.readdirSync(outside).sort();

  it('without a swap the primitives copy as before', () => {
    const dir = tree('plain');
    const { folders, files } = startFolderCopySync(path.join(dir, 'src'), path.join(dir, 'dst', 'copy'));
    assert.deepEqual(folders, ['sub']);
    assert.deepEqual(files, ['a.txt']);
    copyFilesSync(path.join(dir, 'src'), path.join(dir, 'dst', 'copy'), files);
    copyRegularFileSync(path.join(dir, 'src', 'sub', 'secret.txt'), path.join(dir, 'dst', 'one.txt'));
    assert.equal(fs.readFileSync(path.join(dir, 'dst', 'copy', 'a.txt'), 'utf8'), 'a');
    assert.equal(fs.readFileSync(path.join(dir, 'dst', 'one.txt'), 'utf8'), 'inside');
  });

  it('a source folder swapped for a link: nothing outside is listed or read', () => {
    const dir = tree('source');
    swap(path.join(dir, 'src'), outside);
    assert.throws(() => startFolderCopySync(path.join(dir, 'src'), path.join(dir, 'dst', 'copy')), refused);
    assert.equal(fs.existsSync(path.join(dir, 'dst', 'copy')), false);
    assert.throws(() => copyFilesSync(path.join(dir, 'src'), path.join(dir, 'dst'), ['secret.txt']), refused);
    assert.equal(fs.existsSync(path.join(dir, 'dst', 'secret.txt')), false);
    assert.throws(() => new TreeReader(path.join(dir, 'src'), true).next(100), refused);
  });

  it('a folder ABOVE the source swapped for a link: refused too', () => {
    const dir = tree('above');
    // src/sub is what the copy is about to read; src (above it) becomes a link to outside/,
    // which has a sub/ of its own.
    swap(path.join(dir, 'src'), outside);
    assert.throws(() => startFolderCopySync(path.join(dir, 'src', 'sub'), path.join(dir, 'dst', 'copy')), refused);
    assert.throws(() => copyFilesSync(path.join(dir, 'src', 'sub'), path.join(dir, 'dst'), ['secret.txt']), refused);
    assert.throws(() => copyRegularFileSync(path.join(dir, 'src', 'sub', 'secret.txt'), path.join(dir, 'dst', 'x.txt')), refused);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'dst')), [], 'nothing from outside was copied in');
  });

  it('a target folder (or one above it) swapped for a link: nothing is created outside', () => {
    const before = outsideNames();
    const dir = tree('target');
    swap(path.join(dir, 'dst'), outside);
    assert.throws(() => startFolderCopySync(path.join(dir, 'src'), path.join(dir, 'dst', 'copy')), refused);
    assert.throws(() => copyFilesSync(path.join(dir, 'src'), path.join(dir, 'dst'), ['a.txt']), refused);
    assert.throws(() => copyRegularFileSync(path.join(dir, 'src', 'a.txt'), path.join(dir, 'dst', 'a.txt')), refused);
    const deeper = tree('target-above');
    swap(deeper, outside);
    assert.throws(() => copyFilesSync(path.join(`${deeper}.moved`, 'src'), path.join(deeper, 'sub'), ['a.txt']), refused);
    assert.deepEqual(outsideNames(), before, 'nothing was written outside the root');
    assert.equal(fs.readFileSync(path.join(outside, 'sub', 'secret.txt'), 'utf8'), 'outside the root');
  });
});
