/**
 * Issue 21: concurrent uploads into the same new folder, one (or all) of which fail, leave no
 * orphan folder and no partial file — and a failing upload never pulls the folder from under
 * one still running. Bodies are streams the test controls, so the order of events is exact:
 * both uploads are writing (their temp files exist) before one or both fail.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Element } from '../../src/elements/element.js';
import { localfs } from '../../src/elements/localfs/index.js';

describe('localfs: concurrent uploads into one new folder', () => {
  let base = '';
  let root = '';
  let element: Element;
  before(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-upload-race-'));
    element = localfs.create({ root: 'r' }, { localfsBase: base, backendTimeoutMs: 5000 });
    await element.ping();
    root = path.join(base, 'r');
  });
  after(async () => {
    await element.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  const temps = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.startsWith('.ferry-upload-')) : []);

  async function until(check: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !check(); i++) await sleep(10);
    assert.ok(check(), 'timed out');
  }

  /** Starts an upload whose body the test controls; resolves once its temp file exists. */
  async function startUpload(p: string, folder: string) {
    const before = temps(folder).length;
    const body = new PassThrough();
    // As the upload route does (routes/documents.ts): the body may break before the element
    // attaches its pipeline (the temp file exists before open() resolves); the element then
    // sees the errored stream.
    body.on('error', () => {});
    const done = element.write(p, body).then(
      (entry) => ({ entry, error: null as unknown }),
      (error: unknown) => ({ entry: null, error }),
    );
    body.write('partial ');
    await until(() => temps(folder).length > before);
    return { body, done };
  }

  it('both fail: the folders created for them are gone, and no temp file is left', async () => {
    const folder = path.join(root, 'both', 'deep');
    const a = await startUpload('/both/deep/a.txt', folder);
    const b = await startUpload('/both/deep/b.txt', folder);
    a.body.destroy(new Error('client went away'));
    assert.ok((await a.done).error);
    assert.ok(fs.existsSync(folder), 'the folder stays while the other upload writes into it');
    b.body.destroy(new Error('client went away'));
    assert.ok((await b.done).error);
    assert.equal(fs.existsSync(path.join(root, 'both')), false, 'no orphan folder');
  });

  it('the creator fails, the other succeeds: its file is complete, nothing else is left', async () => {
    const folder = path.join(root, 'one', 'deep');
    const a = await startUpload('/one/deep/a.txt', folder);
    const b = await startUpload('/one/deep/b.txt', folder);
    a.body.destroy(new Error('client went away'));
    assert.ok((await a.done).error);
    b.body.end('and the rest');
    const result = await b.done;
    assert.equal(result.error, null, String(result.error));
    assert.deepEqual(fs.readdirSync(folder), ['b.txt']);
    assert.equal(fs.readFileSync(path.join(folder, 'b.txt'), 'utf8'), 'partial and the rest');
  });

  it('the creator succeeds, the other fails: no partial file, the folder stays with the file', async () => {
    const folder = path.join(root, 'two', 'deep');
    const a = await startUpload('/two/deep/a.txt', folder);
    const b = await startUpload('/two/deep/b.txt', folder);
    a.body.end('done');
    assert.equal((await a.done).error, null);
    b.body.destroy(new Error('client went away'));
    assert.ok((await b.done).error);
    assert.deepEqual(fs.readdirSync(folder), ['a.txt']);
  });

  it('a later upload into a folder an earlier failed one created is not disturbed', async () => {
    const folder = path.join(root, 'three');
    const a = await startUpload('/three/a.txt', folder);
    const b = await startUpload('/three/b.txt', folder);
    b.body.destroy(new Error('client went away'));
    assert.ok((await b.done).error);
    a.body.destroy(new Error('client went away'));
    assert.ok((await a.done).error);
    assert.equal(fs.existsSync(folder), false);
    // And a fresh upload there afterwards works.
    const c = await startUpload('/three/c.txt', folder);
    c.body.end('ok');
    assert.equal((await c.done).error, null);
    assert.deepEqual(fs.readdirSync(folder), ['c.txt']);
  });
});
