/**
 * HTTP tests of the documents hub (DESIGN §1.4) on localfs. Every behaviour runs twice: naming
 * objects by `?path=` and by id (the path encoded twice, in the URL). The file system under the
 * instance root is checked directly, so a test proves what was written, not just what was said.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { multipartFile, startTestServer, type TestServer } from '../helpers/server.js';

type Mode = 'path' | 'id';

const objectId = (p: string) => encodeURIComponent(encodeURIComponent(p));

/** The URL of a hub route naming `p` by path (`?path=`) or by id (`/{id}` after the first segment). */
function loc(route: string, p: string, mode: Mode, query: Record<string, string> = {}): string {
  const q = new URLSearchParams(query);
  if (mode === 'path') {
    const rest = q.toString();
    return `/hubs/documents/${route}?path=${encodeURIComponent(p)}${rest ? '&' + rest : ''}`;
  }
  const [head, ...tail] = route.split('/');
  const qs = q.toString();
  return `/hubs/documents/${head}/${objectId(p)}${tail.length ? '/' + tail.join('/') : ''}${qs ? '?' + qs : ''}`;
}

async function json(res: Response, status = 200): Promise<any> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

const sha256 = (b: Buffer | Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

let srv: TestServer;

before(async () => {
  srv = await startTestServer();
});
after(async () => {
  await srv.close();
});

for (const mode of ['path', 'id'] as const) {
  describe(`documents hub by ${mode}`, () => {
    let auth = '';
    let rootDir = '';
    const hub = (url: string, init: RequestInit & { json?: unknown } = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', auth);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      return fetch(srv.base + url, { ...init, headers, body });
    };
    const upload = (p: string, content: Buffer | string, query: Record<string, string> = {}, field = 'file') =>
      hub(loc('files', p, mode, query), { method: 'POST', body: multipartFile(content, path.posix.basename(p) || 'x', field) });
    const onDisk = (p: string) => path.join(rootDir, ...p.split('/').filter(Boolean));
    const createFolder = async (p: string, tags?: string[]) =>
      json(await hub('/hubs/documents/folders', { method: 'POST', json: tags ? { path: p, tags } : { path: p } }));
    const metadata = async (kind: 'files' | 'folders', p: string, status = 200) =>
      json(await hub(loc(`${kind}/metadata`, p, mode)), status);
    /** Every page of a listing route, following Elements-Next-Page-Token. */
    async function allPages(route: string, p: string, query: Record<string, string>): Promise<{ pages: any[][]; items: any[] }> {
      const pages: any[][] = [];
      let next: string | null = null;
      for (let guard = 0; guard < 100; guard++) {
        const q: Record<string, string> = { ...query };
        if (next) q.nextPage = next;
        const url = route === 'search' ? `/hubs/documents/search?${new URLSearchParams({ ...q, path: p })}` : loc(route, p, mode, q);
        const res = await hub(url);
        const page = await json(res);
        assert.equal(res.headers.get('elements-returned-count'), String(page.length));
        pages.push(page);
        next = res.headers.get('elements-next-page-token');
        if (!next) break;
      }
      return { pages, items: pages.flat() };
    }

    before(async () => {
      const inst = await srv.instance('localfs', { root: `docs-${mode}` }, `docs-${mode}`);
      auth = inst.auth;
      rootDir = path.join(srv.config.localfsBase, `docs-${mode}`);
    });

    it('ping and storage', async () => {
      const ping = await json(await hub('/hubs/documents/ping'));
      assert.equal(ping.endpoint, 'localfs');
      assert.ok(Math.abs(Date.parse(ping.dateTime) - Date.now()) < 60_000);
      const storage = await json(await hub('/hubs/documents/storage'));
      assert.equal(typeof storage.total, 'number');
      assert.equal(typeof storage.used, 'number');
      assert.ok(storage.total > 0 && storage.used <= storage.total);
      assert.ok(storage.shared === null || typeof storage.shared === 'number');
    });

    it('uploads (creating parents), downloads the same bytes, metadata agrees', async () => {
      const bytes = crypto.randomBytes(70_001);
      const p = '/up/deep/file one.bin';
      const obj = await json(await upload(p, bytes));
      assert.equal(obj.name, 'file one.bin');
      assert.equal(obj.path, p);
      assert.equal(obj.directory, false);
      assert.equal(obj.size, bytes.length);
      assert.equal(obj.id, objectId(p));
      assert.equal(obj.parentFolderId, objectId('/up/deep'));
      assert.deepEqual(obj.tags, []);
      assert.equal(typeof obj.properties, 'object');
      assert.ok(!Number.isNaN(Date.parse(obj.createdDate)) && obj.modifiedDate.endsWith('Z'));
      assert.equal(sha256(fs.readFileSync(onDisk(p))), sha256(bytes), 'the bytes on disk');

      const res = await hub(loc('files', p, mode));
      assert.equal(res.status, 200);
      const got = Buffer.from(await res.arrayBuffer());
      assert.equal(got.length, bytes.length);
      assert.equal(sha256(got), sha256(bytes));
      assert.equal(res.headers.get('content-length'), String(bytes.length));
      const disposition = res.headers.get('content-disposition') ?? '';
      assert.match(disposition, /^attachment;/);
      assert.ok(disposition.includes('file one.bin') || disposition.includes('file%20one.bin'), disposition);

      const meta = await metadata('files', p);
      assert.equal(meta.size, bytes.length);
      assert.equal(meta.id, obj.id);
      const folder = await metadata('folders', '/up/deep');
      assert.equal(folder.directory, true);
      assert.equal(folder.path, '/up/deep');

      // An empty file.
      const empty = await json(await upload('/up/empty.txt', ''));
      assert.equal(empty.size, 0);
      const dl = await hub(loc('files', '/up/empty.txt', mode));
      assert.equal((await dl.arrayBuffer()).byteLength, 0);
    });

    it('refuses bad uploads with 400/415 and writes nothing', async () => {
      const wrongPart = await upload('/bad/wrong-part.txt', 'x', {}, 'upload');
      const err = await json(wrongPart, 400);
      assert.match(err.message, /file/);
      const raw = await hub(loc('files', '/bad/raw.txt', mode), {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: 'raw bytes',
      });
      assert.ok(raw.status === 400 || raw.status === 415, `non-multipart → ${raw.status}`);
      await raw.arrayBuffer();
      const asJson = await hub(loc('files', '/bad/json.txt', mode), { method: 'POST', json: { a: 1 } });
      assert.ok(asJson.status === 400 || asJson.status === 415, `JSON upload → ${asJson.status}`);
      await asJson.arrayBuffer();
      const noBody = await hub(loc('files', '/bad/none.txt', mode), { method: 'POST' });
      assert.ok(noBody.status === 400 || noBody.status === 415, `no body → ${noBody.status}`);
      await noBody.arrayBuffer();
      if (mode === 'path') {
        await json(await hub('/hubs/documents/files', { method: 'POST', body: multipartFile('x') }), 400);
      }
      await json(await upload('/', 'x'), 400);
      assert.ok(!fs.existsSync(onDisk('/bad/wrong-part.txt')));
      assert.ok(!fs.existsSync(onDisk('/bad/raw.txt')));
      assert.ok(!fs.existsSync(onDisk('/bad/json.txt')));

      // A file cannot be created under a file, nor replace a folder.
      await json(await upload('/bad/plain.txt', 'plain'));
      const under = await upload('/bad/plain.txt/child.txt', 'x');
      assert.ok(under.status === 409 || under.status === 400, `upload under a file → ${under.status}`);
      await under.arrayBuffer();
      await createFolder('/bad/folder');
      const overFolder = await upload('/bad/folder', 'x', { overwrite: 'true' });
      assert.ok(overFolder.status === 409 || overFolder.status === 400, `upload over a folder → ${overFolder.status}`);
      await overFolder.arrayBuffer();
      assert.ok(fs.statSync(onDisk('/bad/folder')).isDirectory());
      const leftovers = fs.readdirSync(onDisk('/bad')).filter((n) => n.startsWith('.ferry-upload'));
      assert.deepEqual(leftovers, [], 'no temp file left behind');
    });

    it('applies the overwrite rules', async () => {
      const p = '/ow/file.txt';
      await json(await upload(p, 'first'));
      const conflict = await json(await upload(p, 'second'), 409);
      assert.match(conflict.message, /overwrite/);
      await json(await upload(p, 'second', { overwrite: 'false' }), 409);
      assert.equal(fs.readFileSync(onDisk(p), 'utf8'), 'first');
      const replaced = await json(await upload(p, 'third!', { overwrite: 'true' }));
      assert.equal(replaced.size, 6);
      assert.equal(fs.readFileSync(onDisk(p), 'utf8'), 'third!');
      await json(await upload(p, 'x', { overwrite: 'maybe' }), 400);
    });

    it('keeps the conflict rules under concurrent requests for one destination', async () => {
      const statuses = (list: Response[]) => Promise.all(list.map(async (r) => (await r.arrayBuffer(), r.status)));
      const count = (list: number[], s: number) => list.filter((x) => x === s).length;

      const uploads = await statuses(await Promise.all(Array.from({ length: 8 }, (_, k) => upload('/race/up.txt', `writer-${k}`))));
      assert.equal(count(uploads, 200), 1, `uploads without overwrite: ${uploads}`);
      assert.equal(count(uploads, 409), 7, `uploads without overwrite: ${uploads}`);
      const winner = uploads.indexOf(200);
      assert.equal(fs.readFileSync(onDisk('/race/up.txt'), 'utf8'), `writer-${winner}`, 'the file holds the answered upload');

      const big = (k: number) => Buffer.alloc(256 * 1024, 65 + k);
      const overwrites = await statuses(
        await Promise.all(Array.from({ length: 6 }, (_, k) => upload('/race/ow.bin', big(k), { overwrite: 'true' }))),
      );
      assert.deepEqual(overwrites, [200, 200, 200, 200, 200, 200]);
      const final = fs.readFileSync(onDisk('/race/ow.bin'));
      assert.equal(final.length, 256 * 1024);
      assert.ok(final.every((b) => b === final[0]), 'one whole upload, never a mix');

      const folders = await statuses(
        await Promise.all(Array.from({ length: 8 }, () => hub('/hubs/documents/folders', { method: 'POST', json: { path: '/race/dir' } }))),
      );
      assert.equal(count(folders, 200), 1, `mkdir: ${folders}`);
      assert.equal(count(folders, 409), 7, `mkdir: ${folders}`);

      const copies = await statuses(
        await Promise.all(
          Array.from({ length: 8 }, () => hub(loc('files/copy', '/race/up.txt', mode), { method: 'POST', json: { path: '/race/copy.txt' } })),
        ),
      );
      assert.equal(count(copies, 200), 1, `copies: ${copies}`);
      assert.equal(count(copies, 409), 7, `copies: ${copies}`);
      assert.equal(fs.readFileSync(onDisk('/race/copy.txt'), 'utf8'), `writer-${winner}`);
    });

    it('answers 400 for a folder download and 404 for missing paths', async () => {
      await createFolder('/dlfolder');
      await json(await hub(loc('files', '/dlfolder', mode)), 400);
      await json(await hub(loc('files', '/missing.txt', mode)), 404);
      await json(await hub(loc('files/metadata', '/missing.txt', mode)), 404);
      await json(await hub(loc('folders/metadata', '/missing', mode)), 404);
      await json(await hub(loc('folders/contents', '/missing', mode)), 404);
      await json(await hub(loc('files', '/missing.txt', mode), { method: 'DELETE' }), 404);
      await json(await hub(loc('folders', '/missing', mode), { method: 'DELETE' }), 404);
      await json(await hub(loc('files/copy', '/missing.txt', mode), { method: 'POST', json: { path: '/x.txt' } }), 404);
      await json(await hub(loc('folders/copy', '/missing', mode), { method: 'POST', json: { path: '/x' } }), 404);
      await json(await hub(loc('files/links', '/missing.txt', mode)), 404);
      await json(await hub(loc('files/metadata', '/missing.txt', mode), { method: 'PATCH', json: { path: '/y.txt' } }), 404);
      // Folder listings of a file are refused; the metadata routes describe whatever the path
      // names, whichever kind the route names (issue 23: the platform's elements do).
      await json(await upload('/dlfolder/f.txt', 'f'));
      assert.equal((await json(await hub(loc('files/metadata', '/dlfolder', mode)))).directory, true);
      assert.equal((await json(await hub(loc('folders/metadata', '/dlfolder/f.txt', mode)))).directory, false);
      await json(await hub(loc('folders/contents', '/dlfolder/f.txt', mode)), 400);
    });

    it('moves, renames and retags through PATCH metadata; tags follow moves, copies and deletes', async () => {
      const tagged = await json(await upload('/tags/a.txt', 'aaa', { 'tags[]': 'one' }));
      assert.deepEqual(tagged.tags, ['one']);
      const retagged = await json(await hub(loc('files/metadata', '/tags/a.txt', mode), { method: 'PATCH', json: { tags: ['x', 'y'] } }));
      assert.deepEqual(retagged.tags, ['x', 'y']);
      assert.deepEqual((await metadata('files', '/tags/a.txt')).tags, ['x', 'y']);

      const moved = await json(
        await hub(loc('files/metadata', '/tags/a.txt', mode), { method: 'PATCH', json: { path: '/tags/moved/b.txt' } }),
      );
      assert.equal(moved.path, '/tags/moved/b.txt');
      assert.equal(moved.name, 'b.txt');
      assert.deepEqual(moved.tags, ['x', 'y']);
      assert.ok(!fs.existsSync(onDisk('/tags/a.txt')));
      assert.equal(fs.readFileSync(onDisk('/tags/moved/b.txt'), 'utf8'), 'aaa');
      await metadata('files', '/tags/a.txt', 404);

      // Move onto an existing file: 409 without overwrite.
      await json(await upload('/tags/other.txt', 'other'));
      await json(await hub(loc('files/metadata', '/tags/other.txt', mode), { method: 'PATCH', json: { path: '/tags/moved/b.txt' } }), 409);
      assert.equal(fs.readFileSync(onDisk('/tags/moved/b.txt'), 'utf8'), 'aaa');

      const copy = await json(await hub(loc('files/copy', '/tags/moved/b.txt', mode), { method: 'POST', json: { path: '/tags/copy.txt' } }));
      assert.deepEqual(copy.tags, ['x', 'y']);
      assert.deepEqual((await metadata('files', '/tags/copy.txt')).tags, ['x', 'y']);

      // Delete, then a new file at the same path has no tags.
      const del = await hub(loc('files', '/tags/copy.txt', mode), { method: 'DELETE' });
      assert.equal(del.status, 200);
      await del.arrayBuffer();
      assert.ok(!fs.existsSync(onDisk('/tags/copy.txt')));
      const fresh = await json(await upload('/tags/copy.txt', 'new'));
      assert.deepEqual(fresh.tags, []);

      // Folder tags and descendants' tags follow a folder move and a folder copy.
      await createFolder('/tf', ['folder-tag']);
      await json(await upload('/tf/in.txt', 'in', { 'tags[]': 'inner' }));
      const movedFolder = await json(await hub(loc('folders/metadata', '/tf', mode), { method: 'PATCH', json: { path: '/tf2' } }));
      assert.equal(movedFolder.path, '/tf2');
      assert.deepEqual(movedFolder.tags, ['folder-tag']);
      assert.deepEqual((await metadata('files', '/tf2/in.txt')).tags, ['inner']);
      await json(await hub(loc('folders/copy', '/tf2', mode), { method: 'POST', json: { path: '/tf3' } }));
      assert.deepEqual((await metadata('folders', '/tf3')).tags, ['folder-tag']);
      assert.deepEqual((await metadata('files', '/tf3/in.txt')).tags, ['inner']);
      // Deleting the folder drops the descendants' tags.
      await json(await hub(loc('folders', '/tf3', mode), { method: 'DELETE' }));
      await json(await upload('/tf3/in.txt', 'again'));
      assert.deepEqual((await metadata('files', '/tf3/in.txt')).tags, []);
      assert.deepEqual((await metadata('folders', '/tf3')).tags, []);

      // Rename with `name`.
      const renamed = await json(await hub(loc('files/metadata', '/tf3/in.txt', mode), { method: 'PATCH', json: { name: 'renamed.txt' } }));
      assert.equal(renamed.path, '/tf3/renamed.txt');
    });

    it('copies files; 409 on an existing destination without overwrite', async () => {
      const bytes = crypto.randomBytes(5000);
      await json(await upload('/cp/src.bin', bytes));
      const copied = await json(await hub(loc('files/copy', '/cp/src.bin', mode), { method: 'POST', json: { path: '/cp/sub/dst.bin' } }));
      assert.equal(copied.path, '/cp/sub/dst.bin');
      assert.equal(copied.size, bytes.length);
      assert.equal(sha256(fs.readFileSync(onDisk('/cp/sub/dst.bin'))), sha256(bytes));
      await json(await upload('/cp/other.bin', 'other'));
      await json(await hub(loc('files/copy', '/cp/other.bin', mode), { method: 'POST', json: { path: '/cp/sub/dst.bin' } }), 409);
      assert.equal(sha256(fs.readFileSync(onDisk('/cp/sub/dst.bin'))), sha256(bytes));
      await json(
        await hub(loc('files/copy', '/cp/other.bin', mode, { overwrite: 'true' }), { method: 'POST', json: { path: '/cp/sub/dst.bin' } }),
      );
      assert.equal(fs.readFileSync(onDisk('/cp/sub/dst.bin'), 'utf8'), 'other');
      await json(await hub(loc('files/copy', '/cp/src.bin', mode), { method: 'POST', json: {} }), 400);
      assert.ok(fs.existsSync(onDisk('/cp/src.bin')), 'the source stays');
    });

    it('creates folders with their parents; an existing folder is a 409', async () => {
      const f = await createFolder('/mk/a/b/c', ['t']);
      assert.equal(f.directory, true);
      assert.equal(f.path, '/mk/a/b/c');
      assert.deepEqual(f.tags, ['t']);
      assert.ok(fs.statSync(onDisk('/mk/a/b/c')).isDirectory());
      await json(await hub('/hubs/documents/folders', { method: 'POST', json: { path: '/mk/a/b/c' } }), 409);
      await json(await hub('/hubs/documents/folders', { method: 'POST', json: { path: '/mk/a' } }), 409);
      await json(await hub('/hubs/documents/folders', { method: 'POST', json: {} }), 400);
      const c = await json(await hub(loc('folders/contents', '/mk/a/b', mode)));
      assert.deepEqual(c.map((o: any) => o.name), ['c']);
    });

    it('copies folders recursively, `name` replacing the last segment; deletes recursively', async () => {
      await json(await upload('/fc/src/a.txt', 'A'));
      await json(await upload('/fc/src/sub/b.txt', 'BB'));
      await createFolder('/fc/src/empty');
      const copied = await json(
        await hub(loc('folders/copy', '/fc/src', mode), { method: 'POST', json: { path: '/fc/dest/ignored', name: 'renamed' } }),
      );
      assert.equal(copied.path, '/fc/dest/renamed');
      assert.equal(copied.directory, true);
      assert.equal(fs.readFileSync(onDisk('/fc/dest/renamed/a.txt'), 'utf8'), 'A');
      assert.equal(fs.readFileSync(onDisk('/fc/dest/renamed/sub/b.txt'), 'utf8'), 'BB');
      assert.ok(fs.statSync(onDisk('/fc/dest/renamed/empty')).isDirectory());
      assert.ok(!fs.existsSync(onDisk('/fc/dest/ignored')));
      await json(
        await hub(loc('folders/copy', '/fc/src', mode), { method: 'POST', json: { path: '/fc/dest/renamed' } }),
        409,
      );
      await json(await hub(loc('folders/copy', '/fc/src', mode), { method: 'POST', json: { path: '/fc/src/inside' } }), 400);
      const over = await json(
        await hub(loc('folders/copy', '/fc/src', mode, { overwrite: 'true' }), { method: 'POST', json: { path: '/fc/dest/renamed' } }),
      );
      assert.equal(over.path, '/fc/dest/renamed');

      const del = await hub(loc('folders', '/fc/src', mode), { method: 'DELETE' });
      assert.equal(del.status, 200);
      await del.arrayBuffer();
      assert.ok(!fs.existsSync(onDisk('/fc/src')));
      await metadata('folders', '/fc/src', 404);
      await json(await hub(loc('files/metadata', '/fc/src/sub/b.txt', mode)), 404);
      assert.ok(fs.existsSync(onDisk('/fc/dest/renamed/sub/b.txt')), 'the copy is untouched');
      // The root cannot be deleted; a file is not a folder.
      await json(await hub(loc('folders', '/', mode), { method: 'DELETE' }), 400);
      await json(await hub(loc('folders', '/fc/dest/renamed/a.txt', mode), { method: 'DELETE' }), 400);
      assert.ok(fs.existsSync(onDisk('/fc/dest/renamed/a.txt')));
    });

    it('pages a folder of 1,005 entries: every name exactly once, with the paging headers', async () => {
      const dir = onDisk('/many');
      fs.mkdirSync(dir, { recursive: true });
      const names: string[] = [];
      for (let i = 0; i < 1000; i++) {
        const name = `file-${String(i).padStart(4, '0')}.${i % 3 === 0 ? 'txt' : 'bin'}`;
        fs.writeFileSync(path.join(dir, name), 'x'.repeat(i % 17));
        names.push(name);
      }
      for (let i = 0; i < 5; i++) {
        fs.mkdirSync(path.join(dir, `sub-${i}`));
        names.push(`sub-${i}`);
      }
      const { pages, items } = await allPages('folders/contents', '/many', { pageSize: '300' });
      assert.deepEqual(pages.map((p) => p.length), [300, 300, 300, 105]);
      const seen = items.map((o) => o.name);
      assert.equal(new Set(seen).size, seen.length, 'no name twice');
      assert.deepEqual([...seen].sort(), [...names].sort(), 'every name once');
      assert.ok(items.slice(0, 5).every((o) => o.directory), 'folders first by default');
      assert.ok(items.every((o) => o.path === `/many/${o.name}` && o.id === objectId(o.path)));

      // Default page size 200; the last page has no next token.
      const first = await hub(loc('folders/contents', '/many', mode));
      assert.equal((await json(first)).length, 200);
      assert.equal(first.headers.get('elements-returned-count'), '200');
      assert.ok(first.headers.get('elements-next-page-token'));
      const exact = await allPages('folders/contents', '/many', { pageSize: '201' });
      assert.equal(exact.items.length, 1005);
      const max = await allPages('folders/contents', '/many', { pageSize: '500' });
      assert.deepEqual(max.pages.map((p) => p.length), [500, 500, 5]);
      await json(await hub(loc('folders/contents', '/many', mode, { pageSize: '501' })), 400);
      await json(await hub(loc('folders/contents', '/many', mode, { pageSize: '0' })), 400);
      await json(await hub(loc('folders/contents', '/many', mode, { nextPage: 'garbage!' })), 400);

      // orderBy
      const bySizeDesc = (await allPages('folders/contents', '/many', { pageSize: '500', orderBy: 'size desc' })).items;
      for (let i = 1; i < bySizeDesc.length; i++) assert.ok(bySizeDesc[i - 1].size >= bySizeDesc[i].size, 'size desc');
      const byNameDesc = await json(await hub(loc('folders/contents', '/many', mode, { pageSize: '500', orderBy: 'name desc' })));
      assert.equal(byNameDesc[0].name, 'sub-4');
      for (let i = 1; i < byNameDesc.length; i++) assert.ok(byNameDesc[i - 1].name > byNameDesc[i].name, 'name desc');
      await json(await hub(loc('folders/contents', '/many', mode, { orderBy: 'colour' })), 400);

      // where
      const where = async (w: string) => (await allPages('folders/contents', '/many', { pageSize: '500', where: w })).items.map((o) => o.name);
      assert.deepEqual(await where("name='file-0007.bin'"), ['file-0007.bin']);
      assert.deepEqual((await where("name like 'FILE-000%'")).sort(), names.filter((n) => n.startsWith('file-000')).sort());
      assert.deepEqual((await where("name in ('sub-1', 'file-0003.txt', 'nope')")).sort(), ['file-0003.txt', 'sub-1']);
      assert.equal((await where("extension='txt'")).length, 334);
      assert.deepEqual((await where('directory=true')).sort(), ['sub-0', 'sub-1', 'sub-2', 'sub-3', 'sub-4']);
      assert.equal((await where('directory=false')).length, 1000);
      assert.deepEqual((await where("extension='txt' and name like '%-099_.txt'")).sort(), ['file-0990.txt', 'file-0993.txt', 'file-0996.txt', 'file-0999.txt']);
      for (const bad of ["name='unterminated", 'size>3', "name = 'a' or name = 'b'", "name in ('a'", 'directory=maybe']) {
        const res = await hub(loc('folders/contents', '/many', mode, { where: bad }));
        const err = await json(res, 400).catch((e) => {
          throw new Error(`where ${bad}: ${e.message}`);
        });
        assert.match(err.message, /where/);
      }

      // Contents of the root, by id too.
      const root = await json(await hub(loc('folders/contents', '/', mode, { pageSize: '500' })));
      assert.ok(root.some((o: any) => o.name === 'many' && o.directory));
      assert.ok(root.every((o: any) => o.parentFolderId === objectId('/')));
    });

    it('searches recursively and case-insensitively, paged', async () => {
      await json(await upload('/srch/Report-Q1.txt', '1'));
      await json(await upload('/srch/deep/er/annual REPORT.pdf', '2'));
      await json(await upload('/srch/deep/other.txt', '3'));
      await createFolder('/srch/reports');
      const { items } = await allPages('search', '/srch', { text: 'report' });
      assert.deepEqual(items.map((o) => o.path).sort(), ['/srch/Report-Q1.txt', '/srch/deep/er/annual REPORT.pdf', '/srch/reports']);
      const paged = await allPages('search', '/srch', { text: 'REPORT', pageSize: '1' });
      assert.deepEqual(paged.pages.map((p) => p.length), [1, 1, 1]);
      assert.equal(new Set(paged.items.map((o) => o.path)).size, 3);
      const under = await allPages('search', '/srch/deep', { text: 'report' });
      assert.deepEqual(under.items.map((o) => o.path), ['/srch/deep/er/annual REPORT.pdf']);
      // Without text, search lists everything under path (issue 23).
      const everything = await allPages('search', '/srch', {});
      assert.ok(everything.items.length >= 3);
      await json(await hub('/hubs/documents/search?text=x&path=/nowhere'), 404);
    });

    it('hands out a signed link that downloads without Authorization; a tampered link is a 403', async () => {
      const bytes = crypto.randomBytes(3333);
      await json(await upload('/links/shared file.bin', bytes));
      const link = await json(await hub(loc('files/links', '/links/shared file.bin', mode)));
      assert.ok(Date.parse(link.expires) > Date.now());
      assert.equal(typeof link.cloudElementsLink, 'string');
      assert.ok(link.cloudElementsLink.startsWith(srv.base + '/'), link.cloudElementsLink);
      const res = await fetch(link.cloudElementsLink);
      assert.equal(res.status, 200);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(bytes));
      assert.match(res.headers.get('content-disposition') ?? '', /attachment/);

      const url = new URL(link.cloudElementsLink);
      const token = url.pathname.split('/').pop()!;
      const [payload, mac] = token.split('.');
      const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
      const otherPath = Buffer.from(
        JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), p: '/links/other.bin' }),
      ).toString('base64url');
      for (const forged of [`${payload}.${flip(mac)}`, `${flip(payload)}.${mac}`, `${otherPath}.${mac}`]) {
        const r = await fetch(`${srv.base}/links/${forged}`);
        assert.equal(r.status, 403, `forged link → ${r.status}`);
        const body: any = await r.json();
        assert.equal(body.requestId, r.headers.get('elements-request-id'));
      }
      const malformed = await fetch(`${srv.base}/links/not-a-token`);
      assert.ok(malformed.status === 400 || malformed.status === 403, `malformed link → ${malformed.status}`);
      await malformed.arrayBuffer();
    });

    it('handles unicode and space-containing names end to end', async () => {
      const folder = '/ünï cödé/日本 語';
      const p = `${folder}/fïlé näme 📄.txt`;
      const content = 'héllo wörld 🌍';
      const obj = await json(await upload(p, content));
      assert.equal(obj.path, p);
      assert.equal(obj.name, 'fïlé näme 📄.txt');
      assert.equal(obj.id, objectId(p));
      assert.equal(fs.readFileSync(onDisk(p), 'utf8'), content);
      const res = await hub(loc('files', p, mode));
      assert.equal(res.status, 200);
      assert.equal(Buffer.from(await res.arrayBuffer()).toString('utf8'), content);
      const disposition = res.headers.get('content-disposition') ?? '';
      assert.ok(disposition.includes(`filename*=UTF-8''${encodeURIComponent('fïlé näme 📄.txt')}`), disposition);
      const listing = await json(await hub(loc('folders/contents', folder, mode)));
      assert.deepEqual(listing.map((o: any) => o.name), ['fïlé näme 📄.txt']);
      assert.equal((await metadata('files', p)).size, Buffer.byteLength(content));
      // The id the server returned works in a URL as is.
      const byReturnedId = await hub(`/hubs/documents/files/${obj.id}/metadata`);
      assert.equal((await json(byReturnedId)).path, p);
      const moved = await json(await hub(loc('files/metadata', p, mode), { method: 'PATCH', json: { path: '/ünï cödé/ëñd.txt' } }));
      assert.equal(moved.path, '/ünï cödé/ëñd.txt');
      assert.equal(fs.readFileSync(onDisk('/ünï cödé/ëñd.txt'), 'utf8'), content);
    });

    it('handles names with URL-special characters (% + # ? & = ; quotes)', async () => {
      const names = ['100% done.txt', 'a+b=c.txt', '#hash?q=1&x=2.txt', "it's \"quoted\".txt", 'semi;colon,comma.txt', '%2e%2e%2f.txt', '%252F.txt'];
      for (const name of names) {
        const p = `/odd chars/${name}`;
        const obj = await json(await upload(p, name));
        assert.equal(obj.path, p, name);
        assert.equal(obj.name, name);
        assert.equal(fs.readFileSync(onDisk(p), 'utf8'), name, `${name} on disk`);
        const res = await hub(loc('files', p, mode));
        assert.equal(res.status, 200, name);
        assert.equal(await res.text(), name);
        assert.equal((await json(await hub(`/hubs/documents/files/${obj.id}/metadata`))).path, p);
      }
      const listing = await json(await hub(loc('folders/contents', '/odd chars', mode)));
      assert.deepEqual(listing.map((o: any) => o.name).sort(), [...names].sort());
    });

    it("refuses names reserved for Ferry's temporary files (they would be invisible), changing nothing", async () => {
      const reserved = '/reserved/.ferry-upload-0123456789abcdef.tmp';
      const refused = await json(await upload(reserved, 'x'), 400);
      assert.match(refused.message, /reserved for Ferry's temporary files/);
      assert.equal(fs.existsSync(onDisk(reserved)), false);
      await json(await hub('/hubs/documents/folders', { method: 'POST', json: { path: '/reserved/.ferry-upload-x.tmp' } }), 400);
    });
  });
}
