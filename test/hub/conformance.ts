/**
 * The documents-hub conformance suite (DESIGN §1.4–1.5, issue 4 item 3): the same HTTP-level
 * tests run against every element, through a real Ferry over real HTTP, synchronously and
 * asynchronously (async results compared with the sync results of the same operation).
 *
 * Each element's test file starts one Ferry test server and its backend, then calls
 *
 *   runHubConformance('sftp', () => srv, async () => sshd.config, { skip });
 *
 * The suite creates one instance from `makeInstanceConfig` and one webhook receiver; every test
 * works in its own top-level folder so tests never see each other's objects.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { multipartFile, startReceiver, type Receiver, type ReceivedHook, type TestServer } from '../helpers/server.js';

/** An instance with a hub client bound to it. */
export interface Hub {
  id: number;
  auth: string;
  /** A synchronous hub call (`/hubs/documents` + pathAndQuery). */
  call(pathAndQuery: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** The same call with `Elements-Async-Request: true` and the callback header set to `callback`. */
  callAsync(pathAndQuery: string, callback: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

/** A hub client for an instance created on `srv`. */
export function hubClient(srv: TestServer, inst: { id: number; auth: string }): Hub {
  const call: Hub['call'] = (p, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', inst.auth);
    return srv.api(`/hubs/documents${p}`, { ...init, headers });
  };
  return {
    id: inst.id,
    auth: inst.auth,
    call,
    callAsync(p, callback, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('elements-async-request', 'true');
      headers.set('elements-async-callback-url', callback);
      return call(p, { ...init, headers });
    },
  };
}

/** `?path=` for a hub path. */
export const q = (p: string): string => `?path=${encodeURIComponent(p)}`;

/** The id of a path: encoded twice (DESIGN §1.4). */
export const idOf = (p: string): string => encodeURIComponent(encodeURIComponent(p));

/** Status and parsed body (text when not JSON) of a response. */
export async function read(res: Response): Promise<{ status: number; body: any; headers: Headers }> {
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

/** Asserts a status and returns the body. */
export async function expectStatus(res: Response, status: number): Promise<any> {
  const r = await read(res);
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
  return r.body;
}

/** Uploads `content` to `path` and returns the object. */
export async function upload(hub: Hub, path: string, content: Buffer | string, query = ''): Promise<any> {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return expectStatus(await hub.call(`/files${q(path)}${query}`, { method: 'POST', body: multipartFile(content, name) }), 200);
}

/** Downloads a file's bytes by path (asserting 200). */
export async function download(hub: Hub, path: string): Promise<Buffer> {
  const res = await hub.call(`/files${q(path)}`);
  if (res.status !== 200) assert.fail(`download ${path}: ${res.status} ${await res.text()}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Every page of a listing route, following Elements-Next-Page-Token. */
export async function allPages(hub: Hub, route: string, pageSize = 500): Promise<{ items: any[]; pages: number }> {
  const items: any[] = [];
  let pages = 0;
  let next: string | null = null;
  do {
    const sep = route.includes('?') ? '&' : '?';
    const url = `${route}${sep}pageSize=${pageSize}${next ? `&nextPage=${encodeURIComponent(next)}` : ''}`;
    const res = await hub.call(url);
    const body = await expectStatus(res, 200);
    assert.ok(Array.isArray(body));
    assert.equal(res.headers.get('elements-returned-count'), String(body.length));
    items.push(...body);
    pages += 1;
    next = res.headers.get('elements-next-page-token');
    assert.ok(pages < 100, 'paging does not end');
  } while (next);
  return { items, pages };
}

/** Every object under `folder` (recursive), as {path relative to folder, name, type, size}. */
export async function tree(hub: Hub, folder: string): Promise<Shape[]> {
  const out: Shape[] = [];
  const walk = async (dir: string): Promise<void> => {
    const { items } = await allPages(hub, `/folders/contents${q(dir)}`);
    for (const o of items) {
      out.push(shape(o.path.slice(folder.length), o.name, o.directory ? 'folder' : 'file', o.directory ? null : o.size));
      if (o.directory) await walk(o.path);
    }
  };
  await walk(folder);
  return sortShapes(out);
}

export interface Shape {
  rel: string;
  name: string;
  type: 'file' | 'folder';
  size: number | null;
}

function shape(rel: string, name: string, type: 'file' | 'folder', size: number | null): Shape {
  return { rel, name, type, size };
}

function sortShapes(s: Shape[]): Shape[] {
  return s.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** Runs `tasks` with at most `limit` in flight. */
export async function bounded<T>(limit: number, count: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < count) {
      const i = nextIndex++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

/**
 * Uploads `mb` MB of generated bytes as a streamed multipart body (never held whole in this
 * process) and returns the bytes' SHA-256.
 */
export async function streamedUpload(hub: Hub, path: string, mb: number): Promise<{ status: number; sha256: string; text: string }> {
  const boundary = `ferry-${randomBytes(8).toString('hex')}`;
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  const name = path.slice(path.lastIndexOf('/') + 1);
  let i = -1;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      i += 1;
      if (i === 0) {
        controller.enqueue(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
      } else if (i <= mb) {
        // Each MB differs (its first bytes carry the index) so a reordered or repeated chunk is caught.
        const chunk = Buffer.from(block);
        chunk.writeUInt32BE(i, 0);
        hash.update(chunk);
        controller.enqueue(chunk);
      } else {
        controller.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
        controller.close();
      }
    },
  });
  const res = await hub.call(`/files${q(path)}`, {
    method: 'POST',
    body,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    duplex: 'half',
  } as RequestInit);
  return { status: res.status, sha256: hash.digest('hex'), text: await res.text() };
}

/** Samples this process's RSS while `work` runs; returns the peak growth over the start in MB. */
export async function rssGrowthMB(work: () => Promise<void>): Promise<number> {
  const start = process.memoryUsage.rss();
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return (Math.max(peak, process.memoryUsage.rss()) - start) / (1024 * 1024);
}

/** The immediate async answer's eventId. */
export async function dispatched(res: Response): Promise<number> {
  const body = await expectStatus(res, 200);
  assert.equal(body.eventStatus, 'dispatched');
  assert.ok(Number.isInteger(body.eventId));
  return body.eventId;
}

/** The webhook of one event. */
export async function hookOf(rx: Receiver, eventId: number, timeoutMs = 20_000): Promise<ReceivedHook> {
  const [hook] = await rx.waitFor(1, timeoutMs, (h) => h.body?.eventId === eventId);
  return hook;
}

export interface HubSuiteOptions {
  /** A reason to skip the whole suite (its server is absent), or false. */
  skip?: string | false;
  /** Size of the streamed round trip in MB (default 200). */
  bigFileMB?: number;
  /** Files in the paging test (default 1,010: over two pages of 500). */
  pagingEntries?: number;
}

/** Registers the hub conformance suite for one element under `describe('hub: <name>')`. */
export function runHubConformance(
  name: string,
  server: () => TestServer,
  makeInstanceConfig: () => Promise<Record<string, unknown>>,
  options: HubSuiteOptions = {},
): void {
  describe(`hub: ${name}`, { skip: options.skip || false }, () => {
    let srv: TestServer;
    let hub: Hub;
    let rx: Receiver;

    before(async () => {
      srv = server();
      rx = await startReceiver();
      const inst = await srv.instance(name, await makeInstanceConfig(), `hub-${name}`);
      hub = hubClient(srv, inst);
    });
    after(async () => {
      await rx?.close();
    });

    test('ping answers the element key; storage answers numbers or null', async () => {
      const ping = await expectStatus(await hub.call('/ping'), 200);
      assert.equal(ping.endpoint, name);
      assert.ok(!Number.isNaN(Date.parse(ping.dateTime)));
      const storage = await expectStatus(await hub.call('/storage'), 200);
      for (const k of ['total', 'used', 'shared']) assert.ok(storage[k] === null || typeof storage[k] === 'number', k);
    });

    test('upload creates parents; download and metadata by path and by id', async () => {
      const p = '/rt/deep/er/data.bin';
      const content = randomBytes(300_000);
      const obj = await upload(hub, p, content);
      assert.equal(obj.path, p);
      assert.equal(obj.name, 'data.bin');
      assert.equal(obj.directory, false);
      assert.equal(obj.size, content.length);
      assert.equal(obj.id, idOf(p));
      assert.equal(obj.parentFolderId, idOf('/rt/deep/er'));
      for (const d of ['createdDate', 'modifiedDate']) {
        if (obj[d] !== null) assert.match(obj[d], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      }
      const byPath = await hub.call(`/files${q(p)}`);
      assert.equal(byPath.status, 200);
      assert.match(byPath.headers.get('content-disposition') ?? '', /attachment; filename="data.bin"/);
      assert.deepEqual(Buffer.from(await byPath.arrayBuffer()), content);
      const byId = await hub.call(`/files/${obj.id}`);
      assert.equal(byId.status, 200);
      assert.deepEqual(Buffer.from(await byId.arrayBuffer()), content);
      const meta = await expectStatus(await hub.call(`/files/metadata${q(p)}`), 200);
      const metaById = await expectStatus(await hub.call(`/files/${obj.id}/metadata`), 200);
      for (const m of [meta, metaById]) {
        assert.equal(m.path, p);
        assert.equal(m.size, content.length);
        assert.equal(m.directory, false);
        assert.deepEqual(m.tags, []);
      }
      const folder = await expectStatus(await hub.call(`/folders/metadata${q('/rt/deep')}`), 200);
      assert.equal(folder.directory, true);
      assert.equal(folder.name, 'deep');
      const folderById = await expectStatus(await hub.call(`/folders/${idOf('/rt/deep')}/metadata`), 200);
      assert.equal(folderById.path, '/rt/deep');
      const ids = await expectStatus(await hub.call(`/folders/${idOf('/rt/deep/er')}/contents`), 200);
      assert.deepEqual(ids.map((o: any) => o.path), [p]);
      // A folder is not a file.
      await expectStatus(await hub.call(`/files${q('/rt/deep')}`), 400);
      // Delete by id, then it is gone.
      await expectStatus(await hub.call(`/files/${obj.id}`, { method: 'DELETE' }), 200);
      await expectStatus(await hub.call(`/files${q(p)}`), 404);
    });

    test('an empty file round-trips; links serve the bytes', async () => {
      await upload(hub, '/links/empty.txt', '');
      assert.equal((await download(hub, '/links/empty.txt')).length, 0);
      const content = randomBytes(5000);
      await upload(hub, '/links/f.bin', content);
      const links = await expectStatus(await hub.call(`/files/links${q('/links/f.bin')}`), 200);
      assert.ok(Date.parse(links.expires) > Date.now());
      const res = await fetch(links.cloudElementsLink);
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);
    });

    test('overwrite: 409 by default, replaced with overwrite=true', async () => {
      const p = '/ow/file.txt';
      await upload(hub, p, 'first');
      const again = await hub.call(`/files${q(p)}`, { method: 'POST', body: multipartFile('second', 'file.txt') });
      await expectStatus(again, 409);
      assert.equal((await download(hub, p)).toString(), 'first');
      const obj = await upload(hub, p, 'second version', '&overwrite=true');
      assert.equal(obj.size, 'second version'.length);
      assert.equal((await download(hub, p)).toString(), 'second version');
      // Uploading over a folder without overwrite is a conflict too.
      await expectStatus(await hub.call(`/folders`, { method: 'POST', json: { path: '/ow/dir' } }), 200);
      await expectStatus(await hub.call(`/files${q('/ow/dir')}`, { method: 'POST', body: multipartFile('x', 'dir') }), 409);
    });

    test('404 for missing objects, by path and by id', async () => {
      const missing = '/nothing/here.txt';
      await expectStatus(await hub.call(`/files${q(missing)}`), 404);
      await expectStatus(await hub.call(`/files/${idOf(missing)}`), 404);
      await expectStatus(await hub.call(`/files/metadata${q(missing)}`), 404);
      await expectStatus(await hub.call(`/files/${idOf(missing)}/metadata`), 404);
      await expectStatus(await hub.call(`/files${q(missing)}`, { method: 'DELETE' }), 404);
      await expectStatus(await hub.call(`/files/copy${q(missing)}`, { method: 'POST', json: { path: '/x' } }), 404);
      await expectStatus(await hub.call(`/folders/contents${q('/nothing')}`), 404);
      await expectStatus(await hub.call(`/folders/metadata${q('/nothing')}`), 404);
      await expectStatus(await hub.call(`/folders${q('/nothing')}`, { method: 'DELETE' }), 404);
      await expectStatus(await hub.call(`/folders/copy${q('/nothing')}`, { method: 'POST', json: { path: '/y' } }), 404);
      const err = await expectStatus(await hub.call(`/files/metadata${q(missing)}`), 404);
      assert.equal(typeof err.message, 'string');
    });

    test('file copy by path and by id; 409 unless overwrite', async () => {
      const content = randomBytes(40_000);
      await upload(hub, '/fc/src.bin', content);
      const copy = await expectStatus(await hub.call(`/files/copy${q('/fc/src.bin')}`, { method: 'POST', json: { path: '/fc/out/dst.bin' } }), 200);
      assert.equal(copy.path, '/fc/out/dst.bin');
      assert.equal(copy.size, content.length);
      assert.deepEqual(await download(hub, '/fc/out/dst.bin'), content);
      assert.deepEqual(await download(hub, '/fc/src.bin'), content, 'the source stays');
      await expectStatus(await hub.call(`/files/copy${q('/fc/src.bin')}`, { method: 'POST', json: { path: '/fc/out/dst.bin' } }), 409);
      await upload(hub, '/fc/other.bin', 'other');
      await expectStatus(
        await hub.call(`/files/${idOf('/fc/other.bin')}/copy?overwrite=true`, { method: 'POST', json: { path: '/fc/out/dst.bin' } }),
        200,
      );
      assert.equal((await download(hub, '/fc/out/dst.bin')).toString(), 'other');
    });

    test('folder copy with name replaces the last segment; recursive; 409 unless overwrite', async () => {
      const a = randomBytes(10_000);
      const b = randomBytes(20_000);
      await upload(hub, '/fold/src/a.bin', a);
      await upload(hub, '/fold/src/sub/b.bin', b);
      await expectStatus(await hub.call('/folders', { method: 'POST', json: { path: '/fold/src/empty' } }), 200);
      const body = { path: '/fold/dest/ignored', name: 'renamed' };
      const copy = await expectStatus(await hub.call(`/folders/copy${q('/fold/src')}`, { method: 'POST', json: body }), 200);
      assert.equal(copy.path, '/fold/dest/renamed');
      assert.equal(copy.directory, true);
      assert.deepEqual(await tree(hub, '/fold/dest/renamed'), await tree(hub, '/fold/src'));
      assert.deepEqual(await download(hub, '/fold/dest/renamed/sub/b.bin'), b);
      assert.deepEqual(await download(hub, '/fold/dest/renamed/a.bin'), a);
      await expectStatus(await hub.call(`/folders/metadata${q('/fold/dest/ignored')}`), 404);
      await expectStatus(await hub.call(`/folders/copy${q('/fold/src')}`, { method: 'POST', json: body }), 409);
      await expectStatus(await hub.call(`/folders/${idOf('/fold/src')}/copy?overwrite=true`, { method: 'POST', json: body }), 200);
      assert.deepEqual(await tree(hub, '/fold/dest/renamed'), await tree(hub, '/fold/src'));
    });

    test('tags: set on upload, replaced by PATCH, follow a move; listing fetchTags', async () => {
      await upload(hub, '/tags/one.txt', 'one', '&tags[]=alpha&tags[]=beta');
      let meta = await expectStatus(await hub.call(`/files/metadata${q('/tags/one.txt')}`), 200);
      assert.deepEqual([...meta.tags].sort(), ['alpha', 'beta']);
      meta = await expectStatus(await hub.call(`/files/metadata${q('/tags/one.txt')}`, { method: 'PATCH', json: { tags: ['red', 'blue'] } }), 200);
      assert.deepEqual([...meta.tags].sort(), ['blue', 'red']);
      const moved = await expectStatus(
        await hub.call(`/files/${idOf('/tags/one.txt')}/metadata`, { method: 'PATCH', json: { path: '/tags/moved/two.txt' } }),
        200,
      );
      assert.equal(moved.path, '/tags/moved/two.txt');
      assert.deepEqual([...moved.tags].sort(), ['blue', 'red']);
      await expectStatus(await hub.call(`/files${q('/tags/one.txt')}`), 404);
      assert.equal((await download(hub, '/tags/moved/two.txt')).toString(), 'one');
      const listed = await expectStatus(await hub.call(`/folders/contents${q('/tags/moved')}&fetchTags=true`), 200);
      assert.deepEqual([...listed[0].tags].sort(), ['blue', 'red']);
      // A folder move carries its descendants' tags.
      await expectStatus(await hub.call(`/folders/metadata${q('/tags/moved')}`, { method: 'PATCH', json: { path: '/tags/again' } }), 200);
      const after = await expectStatus(await hub.call(`/files/metadata${q('/tags/again/two.txt')}`), 200);
      assert.deepEqual([...after.tags].sort(), ['blue', 'red']);
      await expectStatus(await hub.call(`/folders/metadata${q('/tags/moved')}`), 404);
      // A move onto an existing object is a conflict.
      await upload(hub, '/tags/three.txt', 'three');
      await expectStatus(
        await hub.call(`/files/metadata${q('/tags/three.txt')}`, { method: 'PATCH', json: { path: '/tags/again/two.txt' } }),
        409,
      );
    });

    test('folders: create with parents and tags, delete recursively', async () => {
      const made = await expectStatus(await hub.call('/folders', { method: 'POST', json: { path: '/fd/a/b/c', tags: ['t'] } }), 200);
      assert.equal(made.path, '/fd/a/b/c');
      assert.equal(made.directory, true);
      assert.deepEqual(made.tags, ['t']);
      await expectStatus(await hub.call(`/folders/metadata${q('/fd/a/b')}`), 200);
      await upload(hub, '/fd/a/b/c/file.txt', 'x');
      await upload(hub, '/fd/a/other.txt', 'y');
      await expectStatus(await hub.call(`/folders/${idOf('/fd/a')}`, { method: 'DELETE' }), 200);
      for (const p of ['/fd/a', '/fd/a/b', '/fd/a/b/c']) await expectStatus(await hub.call(`/folders/metadata${q(p)}`), 404);
      await expectStatus(await hub.call(`/files${q('/fd/a/b/c/file.txt')}`), 404);
      assert.deepEqual(await expectStatus(await hub.call(`/folders/contents${q('/fd')}`), 200), []);
      // Re-creating the same folder works (no stale marker or tag left behind).
      const again = await expectStatus(await hub.call('/folders', { method: 'POST', json: { path: '/fd/a/b/c' } }), 200);
      assert.deepEqual(again.tags, []);
    });

    test(`contents paging over ${options.pagingEntries ?? 1010} entries`, async () => {
      const n = options.pagingEntries ?? 1010;
      const names = Array.from({ length: n }, (_, i) => `f-${String(i).padStart(5, '0')}.txt`);
      await bounded(16, n, (i) => upload(hub, `/page/${names[i]}`, String(i)));
      const { items, pages } = await allPages(hub, `/folders/contents${q('/page')}`, 500);
      assert.ok(pages >= 3, `pages ${pages}`);
      assert.equal(items.length, n);
      assert.deepEqual(items.map((o) => o.name), names, 'default order is by name, without duplicates or gaps');
      const byId = await allPages(hub, `/folders/${idOf('/page')}/contents`, 300);
      assert.equal(byId.items.length, n);
      const desc = await expectStatus(await hub.call(`/folders/contents${q('/page')}&orderBy=${encodeURIComponent('name desc')}&pageSize=3`), 200);
      assert.deepEqual(desc.map((o: any) => o.name), names.slice(-3).reverse());
      const where = await allPages(hub, `/folders/contents${q('/page')}&where=${encodeURIComponent("name like 'f-0100%'")}`);
      assert.deepEqual(where.items.map((o) => o.name), names.filter((x) => x.startsWith('f-0100')));
    });

    test('where and orderBy', async () => {
      await upload(hub, '/wh/b.txt', 'bb');
      await upload(hub, '/wh/a.md', 'a');
      await upload(hub, '/wh/c.txt', 'cccc');
      await expectStatus(await hub.call('/folders', { method: 'POST', json: { path: '/wh/zdir' } }), 200);
      const list = async (where?: string, orderBy?: string): Promise<string[]> => {
        let url = `/folders/contents${q('/wh')}`;
        if (where) url += `&where=${encodeURIComponent(where)}`;
        if (orderBy) url += `&orderBy=${encodeURIComponent(orderBy)}`;
        return (await expectStatus(await hub.call(url), 200)).map((o: any) => o.name);
      };
      assert.deepEqual(await list(), ['zdir', 'a.md', 'b.txt', 'c.txt'], 'folders first, then by name');
      assert.deepEqual(await list("extension='txt'"), ['b.txt', 'c.txt']);
      assert.deepEqual(await list('directory=true'), ['zdir']);
      assert.deepEqual(await list("name='a.md'"), ['a.md']);
      assert.deepEqual(await list("name in ('a.md','c.txt')"), ['a.md', 'c.txt']);
      assert.deepEqual(await list("name like 'b%' and extension='txt'"), ['b.txt']);
      assert.deepEqual(await list('directory=false', 'size desc'), ['c.txt', 'b.txt', 'a.md']);
      assert.deepEqual(await list(undefined, 'name desc'), ['zdir', 'c.txt', 'b.txt', 'a.md']);
    });

    test('search is recursive and case-insensitive, by path scope', async () => {
      await upload(hub, '/sr/Report-2024.txt', '1');
      await upload(hub, '/sr/deep/er/annual REPORT.pdf', '2');
      await upload(hub, '/sr/deep/other.txt', '3');
      await upload(hub, '/elsewhere-sr/report.txt', '4');
      const found = await allPages(hub, `/search?text=report&path=${encodeURIComponent('/sr')}`);
      assert.deepEqual(found.items.map((o) => o.path).sort(), ['/sr/Report-2024.txt', '/sr/deep/er/annual REPORT.pdf']);
      const none = await expectStatus(await hub.call(`/search?text=nomatch-xyz&path=${encodeURIComponent('/sr')}`), 200);
      assert.deepEqual(none, []);
    });

    test('unicode and space-containing names, by path and by id', async () => {
      const dir = '/Ünï cödé dir';
      const p = `${dir}/файл с пробелом 日本 ☃.txt`;
      const content = Buffer.from('snow ☃ content', 'utf8');
      const obj = await upload(hub, p, content);
      assert.equal(obj.path, p);
      assert.equal(obj.name, 'файл с пробелом 日本 ☃.txt');
      const res = await hub.call(`/files/${idOf(p)}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-disposition') ?? '', new RegExp(`filename\\*=UTF-8''${encodeURIComponent(obj.name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);
      const listed = await expectStatus(await hub.call(`/folders/contents${q(dir)}`), 200);
      assert.deepEqual(listed.map((o: any) => o.name), [obj.name]);
      await expectStatus(await hub.call(`/files/copy${q(p)}`, { method: 'POST', json: { path: `${dir}/copie été.txt` } }), 200);
      assert.deepEqual(await download(hub, `${dir}/copie été.txt`), content);
      const found = await expectStatus(await hub.call(`/search?text=${encodeURIComponent('ПРОБЕЛ')}`), 200);
      assert.ok(found.some((o: any) => o.path === p), 'unicode search is case-insensitive');
    });

    test('paths that would leave the root, NUL bytes and over-long names answer 400', async () => {
      await upload(hub, '/safe/inside.txt', 'inside');
      for (const bad of ['/../etc/passwd', '/safe/../../x', '/a\u0000b', `/${'n'.repeat(300)}`]) {
        await expectStatus(await hub.call(`/files${q(bad)}`), 400);
        await expectStatus(await hub.call(`/files${q(bad)}`, { method: 'POST', body: multipartFile('x', 'x') }), 400);
      }
      await expectStatus(await hub.call(`/files/${idOf('/../../etc/passwd')}`), 400);
      await expectStatus(await hub.call(`/files/copy${q('/safe/inside.txt')}`, { method: 'POST', json: { path: '/../out.txt' } }), 400);
      // Ferry refuses every `..` segment, even one that would stay inside (src/documents/paths.ts).
      await expectStatus(await hub.call(`/files${q('/safe/sub/../inside.txt')}`), 400);
      // `.` and empty segments are dropped.
      assert.equal((await download(hub, '/safe/./inside.txt')).toString(), 'inside');
      assert.equal((await download(hub, '//safe//inside.txt')).toString(), 'inside');
    });

    test(`a ${options.bigFileMB ?? 200} MB streamed round trip`, { timeout: 600_000 }, async (t) => {
      const mb = options.bigFileMB ?? 200;
      let up = { status: 0, sha256: '', text: '' };
      let down = '';
      let bytes = 0;
      const growth = await rssGrowthMB(async () => {
        up = await streamedUpload(hub, '/big/file.bin', mb);
        assert.equal(up.status, 200, up.text);
        const res = await hub.call(`/files${q('/big/file.bin')}`);
        assert.equal(res.status, 200);
        const hash = createHash('sha256');
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          bytes += chunk.length;
          hash.update(chunk);
        }
        down = hash.digest('hex');
      });
      assert.equal(JSON.parse(up.text).size, mb * 1024 * 1024);
      assert.equal(bytes, mb * 1024 * 1024);
      assert.equal(down, up.sha256, 'the downloaded bytes are the uploaded bytes');
      // Not asserted: client and server share this process, and the client's own chunks (garbage
      // V8 collects lazily) alone grow RSS by about the file size. Flat memory needs an
      // out-of-process server to measure.
      t.diagnostic(`RSS grew by ${growth.toFixed(0)} MB during the ${mb} MB round trip`);
      await expectStatus(await hub.call(`/files${q('/big/file.bin')}`, { method: 'DELETE' }), 200);
    });

    test('20 concurrent uploads to one (new) folder all land intact', async () => {
      const contents = Array.from({ length: 20 }, (_, i) => randomBytes(20_000 + i * 1000));
      await Promise.all(contents.map((c, i) => upload(hub, `/conc/file-${i}.bin`, c)));
      const listed = await allPages(hub, `/folders/contents${q('/conc')}`);
      assert.equal(listed.items.length, 20);
      for (let i = 0; i < 20; i++) assert.deepEqual(await download(hub, `/conc/file-${i}.bin`), contents[i], `file-${i}`);
    });

    describe('async mode matches sync mode', () => {
      test('folder copy: webhook events list the same objects the sync copy made', async () => {
        await upload(hub, '/ac/src/a.txt', 'aaa');
        await upload(hub, '/ac/src/sub/b.bin', randomBytes(12_345));
        await upload(hub, '/ac/src/sub/deeper/c.txt', 'c');
        const body = { path: '/ac/dest/x', name: 'sync' };
        await expectStatus(await hub.call(`/folders/copy${q('/ac/src')}`, { method: 'POST', json: body }), 200);
        const syncTree = await tree(hub, '/ac/dest/sync');
        const eventId = await dispatched(
          await hub.callAsync(`/folders/copy${q('/ac/src')}`, rx.url, { method: 'POST', json: { path: '/ac/dest/async' } }),
        );
        const hook = await hookOf(rx, eventId);
        assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
        assert.equal(hook.body.statusCode, 200);
        assert.equal(hook.body.instanceId, hub.id);
        const events: any[] = hook.body.response.events;
        assert.equal(events[0].path, '/ac/dest/async');
        assert.equal(events[0].metadata.type, 'folder');
        const asyncShapes = sortShapes(
          events.slice(1).map((e) => {
            assert.ok(e.path.startsWith('/ac/dest/async/'), e.path);
            assert.equal(e.metadata.path, e.path);
            return shape(e.path.slice('/ac/dest/async'.length), e.metadata.name, e.metadata.type, e.metadata.type === 'file' ? e.metadata.size : null);
          }),
        );
        assert.deepEqual(asyncShapes, syncTree);
        assert.deepEqual(await tree(hub, '/ac/dest/async'), syncTree);
      });

      test('upload: the webhook event describes the same object as the sync answer', async () => {
        const content = randomBytes(50_000);
        const sync = await upload(hub, '/au/sync.bin', content);
        const form = multipartFile(content, 'async.bin');
        const eventId = await dispatched(await hub.callAsync(`/files${q('/au/async.bin')}`, rx.url, { method: 'POST', body: form }));
        const hook = await hookOf(rx, eventId);
        assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
        const events: any[] = hook.body.response.events;
        assert.equal(events.length, 1);
        const m = events[0].metadata;
        assert.equal(events[0].path, '/au/async.bin');
        assert.deepEqual(
          { path: m.path, name: m.name, type: m.type, size: m.size, id: m.id },
          { path: '/au/async.bin', name: 'async.bin', type: 'file', size: sync.size, id: idOf('/au/async.bin') },
        );
        assert.deepEqual(await download(hub, '/au/async.bin'), content);
      });

      test('download: resultUrl serves the same bytes as the sync download', async () => {
        const content = randomBytes(80_000);
        await upload(hub, '/ad/file.bin', content);
        const sync = await download(hub, '/ad/file.bin');
        const eventId = await dispatched(await hub.callAsync(`/files${q('/ad/file.bin')}`, rx.url));
        const hook = await hookOf(rx, eventId);
        assert.equal(hook.body.eventStatus, 'completed', JSON.stringify(hook.body));
        const response = hook.body.response;
        assert.equal(response.size, sync.length);
        assert.ok(response.resultUrl.startsWith(srv.base), response.resultUrl);
        const res = await srv.api(response.resultUrl.slice(srv.base.length));
        assert.equal(res.status, 200);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), sync);
      });

      test('file copy, move and delete: events match the sync answers', async () => {
        await upload(hub, '/am/src.txt', 'copy me');
        const syncCopy = await expectStatus(await hub.call(`/files/copy${q('/am/src.txt')}`, { method: 'POST', json: { path: '/am/sync.txt' } }), 200);
        const copyHook = await hookOf(rx, await dispatched(
          await hub.callAsync(`/files/copy${q('/am/src.txt')}`, rx.url, { method: 'POST', json: { path: '/am/async.txt' } }),
        ));
        assert.equal(copyHook.body.eventStatus, 'completed', JSON.stringify(copyHook.body));
        const [copied] = copyHook.body.response.events;
        assert.deepEqual(
          { path: copied.path, name: copied.metadata.name, type: copied.metadata.type, size: copied.metadata.size },
          { path: '/am/async.txt', name: 'async.txt', type: 'file', size: syncCopy.size },
        );
        const syncMove = await expectStatus(
          await hub.call(`/files/metadata${q('/am/sync.txt')}`, { method: 'PATCH', json: { path: '/am/moved/sync.txt' } }),
          200,
        );
        const moveHook = await hookOf(rx, await dispatched(
          await hub.callAsync(`/files/metadata${q('/am/async.txt')}`, rx.url, { method: 'PATCH', json: { path: '/am/moved/async.txt' } }),
        ));
        assert.equal(moveHook.body.eventStatus, 'completed', JSON.stringify(moveHook.body));
        const moved = moveHook.body.response.events.find((e: any) => !e.metadata.deleted);
        assert.ok(moved, JSON.stringify(moveHook.body.response));
        assert.equal(moved.metadata.path, '/am/moved/async.txt');
        assert.equal(moved.metadata.size, syncMove.size);
        await expectStatus(await hub.call(`/files${q('/am/async.txt')}`), 404);
        assert.equal((await download(hub, '/am/moved/async.txt')).toString(), 'copy me');
        const delHook = await hookOf(rx, await dispatched(
          await hub.callAsync(`/files${q('/am/moved/async.txt')}`, rx.url, { method: 'DELETE' }),
        ));
        assert.equal(delHook.body.eventStatus, 'completed', JSON.stringify(delHook.body));
        const [deleted] = delHook.body.response.events;
        assert.equal(deleted.path, '/am/moved/async.txt');
        assert.equal(deleted.metadata.deleted, true);
        await expectStatus(await hub.call(`/files${q('/am/moved/async.txt')}`), 404);
      });

      test('a failing operation: eventStatus failed with the sync status and error body', async () => {
        const sync = await read(await hub.call(`/files/metadata${q('/af/missing.txt')}`));
        assert.equal(sync.status, 404);
        const hook = await hookOf(rx, await dispatched(await hub.callAsync(`/files/metadata${q('/af/missing.txt')}`, rx.url)));
        assert.equal(hook.body.eventStatus, 'failed');
        assert.equal(hook.body.statusCode, 404);
        assert.equal(hook.body.response.message, sync.body.message);
      });

      test('a folder listing: response is the sync JSON body', async () => {
        await upload(hub, '/al/one.txt', '1');
        await upload(hub, '/al/two.txt', '22');
        const sync = await expectStatus(await hub.call(`/folders/contents${q('/al')}`), 200);
        const eventId = await dispatched(await hub.callAsync(`/folders/contents${q('/al')}`, rx.url));
        const hook = await hookOf(rx, eventId);
        assert.equal(hook.body.eventStatus, 'completed');
        assert.deepEqual(hook.body.response, sync);
      });
    });
  });
}
