/**
 * The localfs folder reading and copying that run on worker threads (tree.ts, tree-pool.ts):
 * folders bigger than one batch are read completely, with the same metadata as `stat`; a walk
 * left early releases its open folder; a folder copy that fails part-way leaves nothing behind,
 * even though several workers were copying at once.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Element, Entry } from '../../src/elements/element.js';
import { localfs } from '../../src/elements/localfs/index.js';
import { rejectsWith } from './conformance.js';

const context = (base: string) => ({ localfsBase: base, backendTimeoutMs: 5000 });
/** More than one batch of a folder read (1,024 rows). */
const MANY = 2500;

describe('localfs trees on worker threads', () => {
  let base: string;
  let rootDir: string;
  let element: Element;
  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-tree-'));
    element = localfs.create({ root: 'r' }, context(base));
    await element.ping();
    rootDir = path.join(base, 'r');
    await mkdir(path.join(rootDir, 'big', 'sub'), { recursive: true });
    for (let i = 0; i < MANY; i += 250) {
      const names = Array.from({ length: 250 }, (_, k) => i + k);
      await Promise.all(names.map((n) => writeFile(path.join(rootDir, 'big', `f${n}.txt`), 'x'.repeat(n % 7))));
    }
    await writeFile(path.join(rootDir, 'big', 'sub', 'deep.txt'), 'deep');
  });
  after(async () => {
    await element.close();
    await rm(base, { recursive: true, force: true });
  });

  it('list and walk return every entry of a folder bigger than one batch, once, as stat sees it', async () => {
    const listed: Entry[] = [];
    for await (const e of element.list('/big')) listed.push(e);
    assert.equal(listed.length, MANY + 1);
    assert.equal(new Set(listed.map((e) => e.path)).size, MANY + 1);
    const walked: string[] = [];
    for await (const e of element.walk!('/big')) walked.push(e.path);
    assert.deepEqual(walked.sort(), [...listed.map((e) => e.path), '/big/sub/deep.txt'].sort());
    for (const e of [listed.find((x) => x.path === '/big/f6.txt')!, listed.find((x) => x.path === '/big/sub')!]) {
      assert.deepEqual(e, await element.stat(e.path));
    }
  });

  it('a walk left early releases its open folder', async (t) => {
    if (!existsSync('/proc/self/fd')) return t.skip('needs /proc/self/fd');
    const openFds = () => readdirSync('/proc/self/fd').length;
    const leave = async () => {
      for await (const e of element.walk!('/big')) if (e) break;
    };
    await leave(); // the pool is up and warm
    await sleep(50);
    const before = openFds();
    for (let i = 0; i < 20; i++) await leave();
    await sleep(50); // the release is a message to the worker
    assert.ok(openFds() < before + 5, `open descriptors grew from ${before} to ${openFds()}`);
  });

  it('a folder copy that fails part-way leaves nothing behind', async () => {
    // The source's deepest files fit the host's path limit; their copies, under a longer
    // name, do not — so the copy fails after creating part of the target.
    let deep = path.join(rootDir, 'long');
    while (deep.length < 3990) deep = path.join(deep, 'd'.repeat(Math.min(200, 3990 - deep.length - 1)));
    await mkdir(deep, { recursive: true });
    await writeFile(path.join(deep, 'last.txt'), 'x');
    for (let i = 0; i < 200; i++) await writeFile(path.join(rootDir, 'long', `top${i}.txt`), 'x');
    await rejectsWith(element.copy('/long', `/${'c'.repeat(150)}`), 'invalid');
    await sleep(50); // nothing may appear late, either
    assert.deepEqual(readdirSync(rootDir).sort(), ['big', 'long']);
  });
});

describe('localfs copies read the listed file, never a link swapped in for it', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-localfs-nofollow-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a symbolic link where a listed file was fails with ELOOP and copies nothing', async () => {
    const { copyFilesSync } = await import('../../src/elements/localfs/tree.js');
    const { symlinkSync, writeFileSync, readFileSync } = await import('node:fs');
    await mkdir(path.join(dir, 'src'));
    await mkdir(path.join(dir, 'dst'));
    writeFileSync(path.join(dir, 'outside-secret'), 'not yours');
    writeFileSync(path.join(dir, 'src', 'plain.txt'), 'plain');
    // Listed as a file, then swapped for a link to something outside the root.
    symlinkSync(path.join(dir, 'outside-secret'), path.join(dir, 'src', 'swapped.txt'));
    copyFilesSync(path.join(dir, 'src'), path.join(dir, 'dst'), ['plain.txt']);
    assert.equal(readFileSync(path.join(dir, 'dst', 'plain.txt'), 'utf8'), 'plain');
    assert.throws(
      () => copyFilesSync(path.join(dir, 'src'), path.join(dir, 'dst'), ['swapped.txt']),
      (e: NodeJS.ErrnoException) => e.code === 'ELOOP',
    );
    assert.equal(existsSync(path.join(dir, 'dst', 'swapped.txt')), false);
  });
});
