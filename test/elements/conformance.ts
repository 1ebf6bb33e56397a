/**
 * The element conformance suite: every behaviour `elements/element.ts` promises, checked only
 * through the Element interface, so each backend (localfs, amazons3, sftp) runs the same cases
 * through a small harness:
 *
 *   runElementConformance('localfs', async () => ({ element, cleanup }));
 *
 * The harness is called once; it returns a ready element on an empty (or private) root and a
 * `cleanup` that releases what the harness made. The suite calls `element.close()` before
 * `cleanup()`. Every test works inside its own folder, so tests do not see each other's
 * objects and a failed test does not spoil the next one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import { isFerryError, type ErrorKind } from '../../src/errors.js';
import type { Element, Entry } from '../../src/elements/element.js';

export interface ElementHarness {
  element: Element;
  cleanup(): Promise<void>;
}

export interface ConformanceOptions {
  /** A reason to skip the whole suite (a server is absent), or false to run it. */
  skip?: string | false;
}

/** Bytes of a stream. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** A stream that yields `data` in chunks of `chunkSize`, as an upload would arrive. */
export function streamOf(data: Buffer, chunkSize = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, i + chunkSize);
    })(),
    { objectMode: false },
  );
}

/** Asserts that `promise` rejects with a FerryError of `kind` (any kind when omitted). */
export async function rejectsWith(promise: Promise<unknown>, kind?: ErrorKind): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isFerryError(e), `expected a FerryError${kind ? ` (${kind})` : ''}, got ${String(e)}`);
    if (kind) assert.equal(e.kind, kind, `expected kind ${kind}, got ${e.kind}: ${e.message}`);
    return true;
  });
}

async function collect(entries: AsyncIterable<Entry>): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of entries) out.push(e);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Registers the conformance suite for one backend under `describe(name)`. */
export function runElementConformance(
  name: string,
  harness: () => Promise<ElementHarness>,
  options: ConformanceOptions = {},
): void {
  describe(name, { skip: options.skip || false }, () => {
    let h: ElementHarness | undefined;
    let element: Element;
    let counter = 0;

    before(async () => {
      h = await harness();
      element = h.element;
    });
    after(async () => {
      if (!h) return;
      await h.element.close();
      await h.cleanup();
    });

    /** A fresh folder path for one test (not created). */
    const scratch = () => `/conf-${++counter}-${randomBytes(4).toString('hex')}`;

    async function put(path: string, data: Buffer | string): Promise<Entry> {
      return element.write(path, streamOf(Buffer.from(data)));
    }

    async function bytesAt(path: string): Promise<Buffer> {
      return readAll(await element.read(path));
    }

    /** Registers a test that gets its own scratch folder, removed afterwards. */
    function test(title: string, body: (dir: string, t: TestContext) => Promise<void>): void {
      it(title, async (t) => {
        const dir = scratch();
        try {
          await body(dir, t);
        } finally {
          await element.remove(dir).catch(() => undefined);
        }
      });
    }

    it('ping answers', async () => {
      await element.ping();
    });

    it('storage has total, used and shared as numbers or null', async () => {
      const s = await element.storage();
      for (const key of ['total', 'used', 'shared'] as const) {
        assert.ok(key in s, `storage() lacks ${key}`);
        const v = s[key];
        assert.ok(v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0), `${key} = ${v}`);
      }
      if (s.total !== null && s.used !== null) assert.ok(s.used <= s.total, 'used > total');
    });

    it('stat of the root is a folder', async () => {
      const root = await element.stat('/');
      assert.ok(root);
      assert.equal(root.directory, true);
      assert.equal(root.path, '/');
    });

    test('stat of a file, a folder and a missing path', async (dir) => {
      await put(`${dir}/a.txt`, 'hello');
      const file = await element.stat(`${dir}/a.txt`);
      assert.ok(file);
      assert.equal(file.path, `${dir}/a.txt`);
      assert.equal(file.directory, false);
      assert.equal(file.size, 5);
      if (file.modifiedDate) assert.ok(Math.abs(file.modifiedDate.getTime() - Date.now()) < 10 * 60_000);

      const folder = await element.stat(dir);
      assert.ok(folder);
      assert.equal(folder.directory, true);
      assert.equal(folder.path, dir);

      assert.equal(await element.stat(`${dir}/missing.txt`), null);
      assert.equal(await element.stat(`${dir}/missing/deeper`), null);
      assert.equal(await element.stat(`${dir}/a.txt/under-a-file`), null);
    });

    test('list shows direct children with sizes', async (dir) => {
      await put(`${dir}/one.txt`, '1');
      await put(`${dir}/two.bin`, Buffer.alloc(1000, 7));
      await element.mkdir(`${dir}/sub`);
      await put(`${dir}/sub/inner.txt`, 'not a direct child');
      const entries = await collect(element.list(dir));
      assert.deepEqual(
        entries.map((e) => [e.path, e.directory, e.directory ? 0 : e.size]),
        [
          [`${dir}/one.txt`, false, 1],
          [`${dir}/sub`, true, 0],
          [`${dir}/two.bin`, false, 1000],
        ],
      );
    });

    test('list of an empty folder is empty; of a missing one, not_found', async (dir) => {
      await element.mkdir(`${dir}/empty`);
      assert.deepEqual(await collect(element.list(`${dir}/empty`)), []);
      await rejectsWith(collect(element.list(`${dir}/missing`)), 'not_found');
    });

    test('walk yields every descendant, folders included', async (dir, t) => {
      if (!element.walk) {
        t.skip('this element has no walk(); the service falls back to list()');
        return;
      }
      await put(`${dir}/a.txt`, 'a');
      await put(`${dir}/x/b.txt`, 'bb');
      await put(`${dir}/x/y/c.txt`, 'ccc');
      await element.mkdir(`${dir}/x/empty`);
      const entries = await collect(element.walk(dir));
      assert.deepEqual(
        entries.map((e) => [e.path, e.directory, e.directory ? 0 : e.size]),
        [
          [`${dir}/a.txt`, false, 1],
          [`${dir}/x`, true, 0],
          [`${dir}/x/b.txt`, false, 2],
          [`${dir}/x/empty`, true, 0],
          [`${dir}/x/y`, true, 0],
          [`${dir}/x/y/c.txt`, false, 3],
        ],
      );
    });

    test('write then read returns the same bytes; write returns the entry', async (dir) => {
      const data = randomBytes(10_000);
      const written = await put(`${dir}/data.bin`, data);
      assert.equal(written.path, `${dir}/data.bin`);
      assert.equal(written.directory, false);
      assert.equal(written.size, data.length);
      assert.deepEqual(await bytesAt(`${dir}/data.bin`), data);
    });

    test('an empty file round-trips', async (dir) => {
      const written = await put(`${dir}/empty.txt`, Buffer.alloc(0));
      assert.equal(written.size, 0);
      assert.equal((await bytesAt(`${dir}/empty.txt`)).length, 0);
      assert.equal((await element.stat(`${dir}/empty.txt`))?.size, 0);
    });

    test('a 5 MB file round-trips as a stream', async (dir) => {
      const data = randomBytes(5 * 1024 * 1024 + 123);
      const written = await element.write(`${dir}/big.bin`, streamOf(data, 100_000));
      assert.equal(written.size, data.length);
      const back = await bytesAt(`${dir}/big.bin`);
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data), 'bytes differ');
    });

    test('unicode, spaces and URL-special characters in names', async (dir) => {
      const names = ['with space.txt', 'héllo wörld.txt', '日本語のファイル.txt', 'emoji 🚀.txt', "100% #1 ?&+=,;'.txt"];
      const folder = `${dir}/dossier été`;
      for (const [i, n] of names.entries()) await put(`${folder}/${n}`, `content ${i}`);
      for (const [i, n] of names.entries()) {
        assert.equal((await bytesAt(`${folder}/${n}`)).toString(), `content ${i}`);
      }
      const listed = (await collect(element.list(folder))).map((e) => e.path).sort();
      assert.deepEqual(listed, names.map((n) => `${folder}/${n}`).sort());
    });

    test('write replaces an existing file', async (dir) => {
      await put(`${dir}/f.txt`, 'a much longer first version');
      const second = await put(`${dir}/f.txt`, 'short');
      assert.equal(second.size, 5);
      assert.equal((await bytesAt(`${dir}/f.txt`)).toString(), 'short');
      assert.equal((await element.stat(`${dir}/f.txt`))?.size, 5);
      assert.deepEqual((await collect(element.list(dir))).map((e) => e.path), [`${dir}/f.txt`]);
    });

    test('write creates missing parent folders', async (dir) => {
      await put(`${dir}/a/b/c/deep.txt`, 'deep');
      for (const folder of [`${dir}/a`, `${dir}/a/b`, `${dir}/a/b/c`]) {
        assert.equal((await element.stat(folder))?.directory, true, `${folder} is not a folder`);
      }
      assert.equal((await bytesAt(`${dir}/a/b/c/deep.txt`)).toString(), 'deep');
    });

    test('a failed write leaves no file and none of the folders it created; existing folders stay', async (dir) => {
      await element.mkdir(`${dir}/kept`);
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(10_000, 1));
          this.destroy(new Error('client went away'));
        },
      });
      await assert.rejects(element.write(`${dir}/kept/new/deeper/file.bin`, failing), /client went away/);
      assert.equal(await element.stat(`${dir}/kept/new`), null);
      assert.deepEqual(await collect(element.list(`${dir}/kept`)), []);
      assert.equal((await element.stat(`${dir}/kept`))?.directory, true);
    });

    test('mkdir creates parents, is idempotent and returns a folder entry', async (dir) => {
      const made = await element.mkdir(`${dir}/p/q/r`);
      assert.equal(made.path, `${dir}/p/q/r`);
      assert.equal(made.directory, true);
      assert.equal((await element.stat(`${dir}/p/q`))?.directory, true);
      await put(`${dir}/p/q/r/keep.txt`, 'kept');
      const again = await element.mkdir(`${dir}/p/q/r`);
      assert.equal(again.directory, true);
      assert.equal((await bytesAt(`${dir}/p/q/r/keep.txt`)).toString(), 'kept');
    });

    test('remove deletes a file', async (dir) => {
      await put(`${dir}/gone.txt`, 'x');
      await put(`${dir}/stays.txt`, 'y');
      await element.remove(`${dir}/gone.txt`);
      assert.equal(await element.stat(`${dir}/gone.txt`), null);
      assert.equal((await bytesAt(`${dir}/stays.txt`)).toString(), 'y');
    });

    test('remove deletes a folder with everything under it', async (dir) => {
      await put(`${dir}/tree/a.txt`, 'a');
      await put(`${dir}/tree/sub/b.txt`, 'b');
      await element.mkdir(`${dir}/tree/sub/empty`);
      await put(`${dir}/tree-sibling.txt`, 's');
      await element.remove(`${dir}/tree`);
      assert.equal(await element.stat(`${dir}/tree`), null);
      assert.equal(await element.stat(`${dir}/tree/sub/b.txt`), null);
      assert.equal((await bytesAt(`${dir}/tree-sibling.txt`)).toString(), 's');
    });

    test('remove of a missing path is not_found', async (dir) => {
      await rejectsWith(element.remove(`${dir}/never-was.txt`), 'not_found');
      await rejectsWith(element.remove(`${dir}/never-was`), 'not_found');
    });

    test('move renames a file and creates the target parents', async (dir) => {
      await put(`${dir}/from.txt`, 'moving');
      await element.move(`${dir}/from.txt`, `${dir}/new/parent/to.txt`);
      assert.equal(await element.stat(`${dir}/from.txt`), null);
      assert.equal((await bytesAt(`${dir}/new/parent/to.txt`)).toString(), 'moving');
    });

    test('move moves a folder with its contents', async (dir) => {
      await put(`${dir}/src/a.txt`, 'a');
      await put(`${dir}/src/sub/b.txt`, 'b');
      await element.move(`${dir}/src`, `${dir}/elsewhere/dst`);
      assert.equal(await element.stat(`${dir}/src`), null);
      assert.equal(await element.stat(`${dir}/src/a.txt`), null);
      assert.equal((await element.stat(`${dir}/elsewhere/dst`))?.directory, true);
      assert.equal((await bytesAt(`${dir}/elsewhere/dst/a.txt`)).toString(), 'a');
      assert.equal((await bytesAt(`${dir}/elsewhere/dst/sub/b.txt`)).toString(), 'b');
    });

    test('move of a missing path is not_found', async (dir) => {
      await rejectsWith(element.move(`${dir}/nope.txt`, `${dir}/other.txt`), 'not_found');
    });

    test('copy copies a file, leaving the source', async (dir) => {
      const data = randomBytes(70_000);
      await put(`${dir}/orig.bin`, data);
      await element.copy(`${dir}/orig.bin`, `${dir}/copies/dup.bin`);
      assert.ok((await bytesAt(`${dir}/copies/dup.bin`)).equals(data));
      assert.ok((await bytesAt(`${dir}/orig.bin`)).equals(data));
      // The copy is independent of its source.
      await put(`${dir}/orig.bin`, 'changed');
      assert.ok((await bytesAt(`${dir}/copies/dup.bin`)).equals(data));
    });

    test('copy copies a folder recursively, byte for byte', async (dir) => {
      const files: Record<string, Buffer> = {
        'a.txt': Buffer.from('alpha'),
        'empty.txt': Buffer.alloc(0),
        'sub/b.bin': randomBytes(200_000),
        'sub/deeper/c.txt': Buffer.from('gamma'),
        'name with space/ünï.txt': Buffer.from('unicode'),
      };
      for (const [rel, data] of Object.entries(files)) await put(`${dir}/src/${rel}`, data);
      await element.mkdir(`${dir}/src/empty-folder`);
      await element.copy(`${dir}/src`, `${dir}/out/copy`);
      for (const [rel, data] of Object.entries(files)) {
        assert.ok((await bytesAt(`${dir}/out/copy/${rel}`)).equals(data), `${rel} differs`);
        assert.ok((await bytesAt(`${dir}/src/${rel}`)).equals(data), `source ${rel} changed`);
      }
      assert.equal((await element.stat(`${dir}/out/copy/empty-folder`))?.directory, true);
      const copied = (await collect(element.list(`${dir}/out/copy`))).map((e) => e.path);
      assert.deepEqual(copied, ['a.txt', 'empty-folder', 'empty.txt', 'name with space', 'sub'].map((n) => `${dir}/out/copy/${n}`));
    });

    test('copy of a missing path is not_found', async (dir) => {
      await rejectsWith(element.copy(`${dir}/nope`, `${dir}/other`), 'not_found');
    });

    test('read of a missing path is not_found', async (dir) => {
      await rejectsWith(element.read(`${dir}/missing.txt`), 'not_found');
      await rejectsWith(element.read(`${dir}/missing-folder/missing.txt`), 'not_found');
    });

    test('read of a folder fails with a domain error', async (dir) => {
      await element.mkdir(`${dir}/folder`);
      await rejectsWith(element.read(`${dir}/folder`));
    });
  });
}
