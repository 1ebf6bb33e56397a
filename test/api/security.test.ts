/**
 * HTTP security tests of the documents hub on localfs: path traversal in every spelling (by
 * path and by id), NUL bytes, over-long names, symbolic links planted inside an instance root,
 * and the strictness of the HTTP edge (bad JSON, wrong content types, page size limits, forged
 * internal identity, links of disabled instances). Every attempt must be refused and the file
 * system outside the root must be untouched — checked on disk, not only by status.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { multipartFile, PLATFORM_AUTH, startTestServer, USER_SECRET, type TestServer } from '../helpers/server.js';

const SECRET_TEXT = 'TOP-SECRET-OUTSIDE-THE-ROOT';

/** A request with the URL path sent byte for byte (fetch would normalise "..", "%2e%2e"). */
function raw(
  srv: TestServer,
  urlPath: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(srv.base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: options.method ?? 'GET', path: urlPath, headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Every file under `dir` (relative paths), following nothing. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r + (e.isDirectory() ? '/' : e.isSymbolicLink() ? '@' : ''));
      if (e.isDirectory()) walk(path.join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}

describe('documents hub security (localfs)', () => {
  let srv: TestServer;
  let auth = '';
  let base = ''; // FERRY_LOCALFS_BASE
  let rootDir = ''; // the instance root: <base>/sec/root
  let outsideDir = ''; // <base>/sec/outside, a sibling of the root
  const prefix = () => new URL(srv.base).pathname; // /elements/api-v2

  /** Snapshot of everything outside the instance root that a traversal could reach. */
  function outsideSnapshot(): string {
    const parts = [tree(path.join(base, 'sec')).filter((p) => !p.startsWith('root/')).join('\n')];
    for (const f of ['sec/secret.txt', 'sec/outside/inner.txt', 'top.txt']) parts.push(fs.readFileSync(path.join(base, f), 'utf8'));
    parts.push(tree(srv.dataDir).filter((p) => !p.startsWith('files/sec/root/') && !p.startsWith('ferry.db')).join('\n'));
    return parts.join('\n--\n');
  }

  before(async () => {
    srv = await startTestServer();
    base = srv.config.localfsBase;
    const inst = await srv.instance('localfs', { root: 'sec/root' }, 'sec');
    auth = inst.auth;
    rootDir = path.join(base, 'sec', 'root');
    outsideDir = path.join(base, 'sec', 'outside');
    fs.mkdirSync(outsideDir, { recursive: true });
    fs.writeFileSync(path.join(base, 'sec', 'secret.txt'), SECRET_TEXT);
    fs.writeFileSync(path.join(outsideDir, 'inner.txt'), SECRET_TEXT);
    fs.writeFileSync(path.join(base, 'top.txt'), SECRET_TEXT);
    fs.mkdirSync(path.join(rootDir, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(rootDir, 'a', 'inside.txt'), 'inside');
    fs.writeFileSync(path.join(rootDir, 'plain.txt'), 'plain');
  });
  after(async () => {
    await srv.close();
  });

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

  function assertRefused(status: number, what: string, allowed = [400, 404]): void {
    assert.ok(allowed.includes(status), `${what} → ${status}, expected one of ${allowed.join('/')}`);
  }

  it('refuses traversal in ?path= (every spelling), for reads and writes', async () => {
    const before = outsideSnapshot();
    // Query values as they appear in the URL (not encoded again by the test).
    const spellings = [
      '..',
      '../secret.txt',
      '/../secret.txt',
      '/a/../../secret.txt',
      '/a/b/../../../secret.txt',
      '/../../top.txt',
      '..%2Fsecret.txt',
      '%2e%2e%2fsecret.txt',
      '%2E%2E/secret.txt',
      '%2Fa%2F..%2F..%2Fsecret.txt',
      '..\\secret.txt',
      '%5C..%5Csecret.txt',
      '\\..\\..\\top.txt',
      'a/%2e%2e/%2e%2e/secret.txt',
      '/a/..',
      '/./../secret.txt',
      '/plain.txt%00.jpg',
      '%00',
      '/a%00/../secret.txt',
    ];
    const refused400 = (s: string) => /\.\.|%2e%2e|%00|\\|%5c/i.test(s);
    for (const s of spellings) {
      const q = `?path=${s}`;
      const allowed = refused400(s) ? [400] : [400, 404];
      for (const route of ['files', 'files/metadata', 'files/links', 'folders/contents', 'folders/metadata']) {
        const r = await raw(srv, `${prefix()}/hubs/documents/${route}${q}`, { headers: { authorization: auth } });
        assertRefused(r.status, `GET ${route}${q}`, allowed);
        assert.ok(!r.body.includes(SECRET_TEXT), `GET ${route}${q} leaked the secret`);
        const body = JSON.parse(r.body);
        assert.equal(body.requestId, r.headers['elements-request-id']);
      }
      const up = await hub(`/hubs/documents/files${q}&overwrite=true`, { method: 'POST', body: multipartFile('PWNED') });
      assertRefused(up.status, `upload ${q}`, allowed);
      await up.arrayBuffer();
      const del = await raw(srv, `${prefix()}/hubs/documents/files${q}`, { method: 'DELETE', headers: { authorization: auth } });
      assertRefused(del.status, `DELETE files${q}`, allowed);
      const delFolder = await raw(srv, `${prefix()}/hubs/documents/folders${q}`, { method: 'DELETE', headers: { authorization: auth } });
      assertRefused(delFolder.status, `DELETE folders${q}`, [...allowed]);
    }
    // Destinations in JSON bodies (decoded once by JSON, no URL decoding).
    for (const dest of ['../secret.txt', '/a/../../pwned.txt', '/../../top.txt', '..\\pwned.txt', '/a\u0000/x', '/..', '/a/b/../../../../pwned']) {
      const copy = await hub('/hubs/documents/files/copy?path=/plain.txt&overwrite=true', { method: 'POST', json: { path: dest } });
      assert.equal(copy.status, 400, `copy to ${JSON.stringify(dest)} → ${copy.status}`);
      await copy.arrayBuffer();
      const move = await hub('/hubs/documents/files/metadata?path=/plain.txt&overwrite=true', { method: 'PATCH', json: { path: dest } });
      assert.equal(move.status, 400, `move to ${JSON.stringify(dest)} → ${move.status}`);
      await move.arrayBuffer();
      const mk = await hub('/hubs/documents/folders', { method: 'POST', json: { path: dest } });
      assert.equal(mk.status, 400, `mkdir ${JSON.stringify(dest)} → ${mk.status}`);
      await mk.arrayBuffer();
      const fcopy = await hub('/hubs/documents/folders/copy?path=/a&overwrite=true', { method: 'POST', json: { path: dest } });
      assert.equal(fcopy.status, 400, `folder copy to ${JSON.stringify(dest)} → ${fcopy.status}`);
      await fcopy.arrayBuffer();
    }
    for (const name of ['..', '../x', 'a/b', '.', '']) {
      const r = await hub('/hubs/documents/folders/copy?path=/a', { method: 'POST', json: { path: '/a-copy', name } });
      assert.equal(r.status, 400, `folder copy name ${JSON.stringify(name)} → ${r.status}`);
      await r.arrayBuffer();
      const m = await hub('/hubs/documents/files/metadata?path=/plain.txt', { method: 'PATCH', json: { name } });
      assert.equal(m.status, 400, `rename to ${JSON.stringify(name)} → ${m.status}`);
      await m.arrayBuffer();
    }
    assert.equal(outsideSnapshot(), before, 'nothing outside the root changed');
    assert.equal(fs.readFileSync(path.join(rootDir, 'plain.txt'), 'utf8'), 'plain');
    assert.ok(!fs.existsSync(path.join(rootDir, 'a-copy')));
  });

  it('keeps double-encoded traversal a literal name inside the root', async () => {
    const before = outsideSnapshot();
    for (const s of ['%252e%252e%252fsecret.txt', '%252E%252E%252F%252E%252E%252Ftop.txt', '..%252fsecret.txt']) {
      const q = `?path=${s}`;
      for (const route of ['files', 'files/metadata', 'folders/contents']) {
        const r = await raw(srv, `${prefix()}/hubs/documents/${route}${q}`, { headers: { authorization: auth } });
        assertRefused(r.status, `GET ${route}${q}`);
        assert.ok(!r.body.includes(SECRET_TEXT));
      }
      const up = await hub(`/hubs/documents/files${q}`, { method: 'POST', body: multipartFile('literal') });
      if (up.status === 200) {
        const obj: any = await up.json();
        // The name is the once-decoded text, a single segment inside the root.
        const literal = decodeURIComponent(s.replace(/^\.\./, '..'));
        assert.equal(obj.path, `/${literal}`);
        assert.equal(fs.readFileSync(path.join(rootDir, literal), 'utf8'), 'literal');
        fs.rmSync(path.join(rootDir, literal));
      } else {
        assertRefused(up.status, `upload ${q}`);
        await up.arrayBuffer();
      }
    }
    assert.equal(outsideSnapshot(), before);
  });

  it('refuses traversal by id (encoded once, twice, and raw)', async () => {
    const before = outsideSnapshot();
    const enc2 = (p: string) => encodeURIComponent(encodeURIComponent(p));
    const ids = [
      enc2('/../secret.txt'),
      enc2('../../top.txt'),
      enc2('/a/../../secret.txt'),
      enc2('..\\secret.txt'),
      enc2('/plain.txt\u0000'),
      encodeURIComponent('/../secret.txt'), // encoded once
      '..%2Fsecret.txt',
      '%2E%2E%2Fsecret.txt',
      '%252E%252E%252Fsecret.txt',
      '%25252E%25252E%25252Fsecret.txt', // three times: a literal name
      '%2e%2e',
      '..',
      '%00',
      '%2500',
      '%E0%A4%A', // bad percent-encoding
      '%25E0%25A4%25A',
    ];
    for (const id of ids) {
      for (const route of ['files/{id}', 'files/{id}/metadata', 'files/{id}/links', 'folders/{id}/contents', 'folders/{id}/metadata']) {
        const url = `${prefix()}/hubs/documents/${route.replace('{id}', id)}`;
        const r = await raw(srv, url, { headers: { authorization: auth } });
        assertRefused(r.status, `GET ${url}`);
        assert.ok(!r.body.includes(SECRET_TEXT), `GET ${url} leaked the secret`);
      }
      for (const [method, route] of [
        ['DELETE', 'files/{id}'],
        ['DELETE', 'folders/{id}'],
      ]) {
        const r = await raw(srv, `${prefix()}/hubs/documents/${route.replace('{id}', id)}`, { method, headers: { authorization: auth } });
        assertRefused(r.status, `${method} ${route} ${id}`);
      }
      const form = multipartFile('PWNED');
      const req = new Request('http://x/', { method: 'POST', body: form });
      const body = Buffer.from(await req.arrayBuffer());
      const up = await raw(srv, `${prefix()}/hubs/documents/files/${id}?overwrite=true`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': req.headers.get('content-type')! },
        body,
      });
      if (up.status === 200) {
        // Only a thrice-encoded id may land, as a literal name inside the root.
        const obj = JSON.parse(up.body);
        assert.ok(!obj.path.slice(1).includes('/'), `upload by id ${id} landed at ${obj.path}`);
        fs.rmSync(path.join(rootDir, obj.path.slice(1)));
      } else assertRefused(up.status, `upload by id ${id}`);
      const copy = await raw(srv, `${prefix()}/hubs/documents/files/${id}/copy`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ path: '/stolen.txt' }),
      });
      assertRefused(copy.status, `copy by id ${id}`);
    }
    assert.ok(!fs.existsSync(path.join(rootDir, 'stolen.txt')));
    assert.equal(outsideSnapshot(), before);
  });

  it('treats //etc/passwd as a path inside the root', async () => {
    for (const p of ['//etc/passwd', '///etc//passwd', '/./etc/passwd']) {
      const r = await raw(srv, `${prefix()}/hubs/documents/files?path=${p}`, { headers: { authorization: auth } });
      assert.equal(r.status, 404, `${p} → ${r.status}`);
      assert.ok(!r.body.includes('root:'));
    }
    const up = await hub('/hubs/documents/files?path=//etc/passwd', { method: 'POST', body: multipartFile('inside') });
    const obj: any = await up.json();
    assert.equal(up.status, 200);
    assert.equal(obj.path, '/etc/passwd');
    assert.equal(fs.readFileSync(path.join(rootDir, 'etc', 'passwd'), 'utf8'), 'inside');
    fs.rmSync(path.join(rootDir, 'etc'), { recursive: true });
  });

  it('refuses over-long names and paths with 400', async () => {
    const longName = 'n'.repeat(256);
    const longUnicode = 'é'.repeat(128); // 256 bytes in UTF-8
    const longPath = '/' + Array.from({ length: 500 }, () => 'abcdefghi').join('/'); // 5000 characters > 4096
    for (const p of [`/${longName}`, `/a/${longUnicode}.txt`, longPath]) {
      const q = `?path=${encodeURIComponent(p)}`;
      const up = await hub(`/hubs/documents/files${q}`, { method: 'POST', body: multipartFile('x') });
      assert.equal(up.status, 400, `upload ${p.length} chars → ${up.status}`);
      await up.arrayBuffer();
      const mk = await hub('/hubs/documents/folders', { method: 'POST', json: { path: p } });
      assert.equal(mk.status, 400);
      await mk.arrayBuffer();
      const byId = await hub(`/hubs/documents/files/${encodeURIComponent(encodeURIComponent(p))}/metadata`);
      assert.equal(byId.status, 400, `metadata by id of ${p.length} chars → ${byId.status}`);
      await byId.arrayBuffer();
    }
    // 255 bytes is fine.
    const ok = await hub(`/hubs/documents/files?path=${encodeURIComponent('/' + 'n'.repeat(255))}`, { method: 'POST', body: multipartFile('x') });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    assert.ok(!fs.readdirSync(rootDir).some((n) => n.length > 255));
  });

  it('never follows a symlink planted inside the root', async () => {
    fs.symlinkSync(outsideDir, path.join(rootDir, 'link'));
    fs.symlinkSync(path.join(base, 'sec', 'secret.txt'), path.join(rootDir, 'file-link.txt'));
    fs.symlinkSync('../outside', path.join(rootDir, 'a', 'rel-link'));
    const before = outsideSnapshot();
    try {
      const reads = [
        'files?path=/link/inner.txt',
        'files/metadata?path=/link/inner.txt',
        'files/links?path=/link/inner.txt',
        'folders/contents?path=/link',
        'folders/metadata?path=/link',
        'files?path=/file-link.txt',
        'files/metadata?path=/file-link.txt',
        'files/links?path=/file-link.txt',
        'files?path=/a/rel-link/inner.txt',
        'folders/contents?path=/a/rel-link',
        `files/${encodeURIComponent(encodeURIComponent('/link/inner.txt'))}`,
        `folders/${encodeURIComponent(encodeURIComponent('/link'))}/contents`,
      ];
      for (const r of reads) {
        const res = await hub(`/hubs/documents/${r}`);
        const text = await res.text();
        assertRefused(res.status, `GET ${r}`, [400, 403, 404]);
        assert.ok(!text.includes(SECRET_TEXT), `GET ${r} leaked the secret`);
      }
      // Listings and searches do not show or descend into links.
      const list: any[] = await (await hub('/hubs/documents/folders/contents?path=/')).json();
      assert.ok(!list.some((o) => o.name === 'link' || o.name === 'file-link.txt'), JSON.stringify(list.map((o) => o.name)));
      const sub: any[] = await (await hub('/hubs/documents/folders/contents?path=/a')).json();
      assert.ok(!sub.some((o) => o.name === 'rel-link'));
      const found: any[] = await (await hub('/hubs/documents/search?text=inner')).json();
      assert.deepEqual(found, []);
      const foundFile: any[] = await (await hub('/hubs/documents/search?text=link')).json();
      assert.deepEqual(foundFile, []);

      // Writes through the link.
      const writes: [string, RequestInit & { json?: unknown }][] = [
        ['files?path=/link/new.txt', { method: 'POST', body: multipartFile('PWNED') }],
        ['files?path=/link/inner.txt&overwrite=true', { method: 'POST', body: multipartFile('PWNED') }],
        ['files?path=/link/deeper/new.txt', { method: 'POST', body: multipartFile('PWNED') }],
        ['files?path=/a/rel-link/new.txt', { method: 'POST', body: multipartFile('PWNED') }],
        ['folders', { method: 'POST', json: { path: '/link/newdir' } }],
        ['folders', { method: 'POST', json: { path: '/link/x/y' } }],
        ['files/copy?path=/plain.txt', { method: 'POST', json: { path: '/link/copied.txt' } }],
        ['files/copy?path=/plain.txt&overwrite=true', { method: 'POST', json: { path: '/link/inner.txt' } }],
        ['files/copy?path=/link/inner.txt', { method: 'POST', json: { path: '/stolen.txt' } }],
        ['folders/copy?path=/link', { method: 'POST', json: { path: '/stolen-dir' } }],
        ['folders/copy?path=/a', { method: 'POST', json: { path: '/link/a-copy' } }],
        ['files/metadata?path=/plain.txt', { method: 'PATCH', json: { path: '/link/moved.txt' } }],
        ['files/metadata?path=/link/inner.txt', { method: 'PATCH', json: { path: '/stolen.txt' } }],
        ['folders/metadata?path=/link', { method: 'PATCH', json: { path: '/stolen-dir' } }],
        ['files?path=/link/inner.txt', { method: 'DELETE' }],
        ['files?path=/file-link.txt', { method: 'DELETE' }],
        ['folders?path=/link', { method: 'DELETE' }],
        ['folders?path=/a/rel-link', { method: 'DELETE' }],
      ];
      for (const [r, init] of writes) {
        const res = await hub(`/hubs/documents/${r}`, init);
        const text = await res.text();
        assertRefused(res.status, `${init.method} ${r}`, [400, 403, 404, 409]);
        assert.ok(!text.includes(SECRET_TEXT));
      }
      assert.equal(outsideSnapshot(), before, 'nothing outside the root changed');
      assert.ok(!fs.existsSync(path.join(rootDir, 'stolen.txt')));
      assert.ok(!fs.existsSync(path.join(rootDir, 'stolen-dir')));
      assert.equal(fs.readFileSync(path.join(rootDir, 'plain.txt'), 'utf8'), 'plain');
      // A folder copy of a tree holding a link copies no link and nothing it points to.
      const copy = await hub('/hubs/documents/folders/copy?path=/a', { method: 'POST', json: { path: '/a-copy' } });
      assert.equal(copy.status, 200);
      await copy.arrayBuffer();
      assert.deepEqual(tree(path.join(rootDir, 'a-copy')), ['b/', 'inside.txt']);
      // Deleting the folder holding a link removes the link, not its target.
      const del = await hub('/hubs/documents/folders?path=/a-copy', { method: 'DELETE' });
      assert.equal(del.status, 200);
      await del.arrayBuffer();
      assert.equal(outsideSnapshot(), before);
    } finally {
      fs.rmSync(path.join(rootDir, 'link'), { force: true });
      fs.rmSync(path.join(rootDir, 'file-link.txt'), { force: true });
      fs.rmSync(path.join(rootDir, 'a', 'rel-link'), { force: true });
    }
  });

  it('refuses a root that is a symlink to elsewhere', async () => {
    fs.mkdirSync(path.join(base, 'linked-roots'), { recursive: true });
    fs.symlinkSync(outsideDir, path.join(base, 'linked-roots', 'evil'));
    const res = await srv.api('/instances', {
      method: 'POST',
      json: { element: { key: 'localfs' }, name: 'evil', configuration: { root: 'linked-roots/evil' } },
    });
    assert.equal(res.status, 400);
    await res.arrayBuffer();
  });

  it('answers 400 for bad JSON and 415 for a wrong content type', async () => {
    const bad = await hub('/hubs/documents/folders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"path": ' });
    const err: any = await bad.json();
    assert.equal(bad.status, 400);
    assert.equal(err.requestId, bad.headers.get('elements-request-id'));
    const empty = await hub('/hubs/documents/folders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' });
    assert.equal(empty.status, 400);
    await empty.arrayBuffer();
    for (const [url, method] of [
      ['/hubs/documents/folders', 'POST'],
      ['/hubs/documents/files/copy?path=/plain.txt', 'POST'],
      ['/hubs/documents/files/metadata?path=/plain.txt', 'PATCH'],
    ]) {
      const r = await hub(url, { method, headers: { 'content-type': 'text/plain' }, body: '{"path":"/x"}' });
      assert.equal(r.status, 415, `${method} ${url} as text/plain → ${r.status}`);
      await r.arrayBuffer();
    }
    const inst = await srv.api('/instances', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<a/>' });
    assert.equal(inst.status, 415);
    await inst.arrayBuffer();
    const badInst = await srv.api('/instances', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,' });
    assert.equal(badInst.status, 400);
    await badInst.arrayBuffer();
    // Wrong JSON shapes.
    for (const body of [[1, 2], 'string', {}, { path: '' }, { path: '/x', tags: [''] }, { path: '/x', tags: [{}] }]) {
      const r = await hub('/hubs/documents/folders', { method: 'POST', json: body });
      assert.equal(r.status, 400, `folders body ${JSON.stringify(body)} → ${r.status}`);
      await r.arrayBuffer();
    }
    assert.ok(!fs.existsSync(path.join(rootDir, 'x')));

    // Bodiless requests that carry a JSON content type (many clients always send one) work.
    const json = { 'content-type': 'application/json' };
    const up = await hub('/hubs/documents/files?path=/bodiless.txt', { method: 'POST', body: multipartFile('b') });
    assert.equal(up.status, 200);
    await up.arrayBuffer();
    const del = await hub('/hubs/documents/files?path=/bodiless.txt', { method: 'DELETE', headers: json });
    assert.equal(del.status, 200, `bodiless DELETE with a JSON content type → ${del.status}`);
    await del.arrayBuffer();
    assert.ok(!fs.existsSync(path.join(rootDir, 'bodiless.txt')));
    const id = (await (await srv.api('/instances')).json() as any[])[0].id;
    const enable = await srv.api(`/instances/${id}/enabled`, { method: 'PUT', headers: json });
    assert.equal(enable.status, 200, `bodiless PUT /enabled with a JSON content type → ${enable.status}`);
    await enable.arrayBuffer();
  });

  it('refuses page sizes over 500 and invalid paging parameters', async () => {
    for (const q of ['pageSize=501', 'pageSize=100000', 'pageSize=0', 'pageSize=-1', 'pageSize=abc', 'pageSize=1.5']) {
      for (const route of ['folders/contents?path=/', 'search?text=a']) {
        const r = await hub(`/hubs/documents/${route}&${q}`);
        assert.equal(r.status, 400, `${route}&${q} → ${r.status}`);
        await r.arrayBuffer();
      }
    }
    const ok = await hub('/hubs/documents/folders/contents?path=/&pageSize=500');
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
  });

  it('refuses the wrong kind of credentials and a forged internal identity', async () => {
    const platformOnHub = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: PLATFORM_AUTH } });
    assert.equal(platformOnHub.status, 401);
    await platformOnHub.arrayBuffer();
    const token = auth.split('Element ')[1];
    const elementOnPlatform = await fetch(`${srv.base}/instances`, { headers: { authorization: `User ${USER_SECRET}, Element ${token}` } });
    assert.equal(elementOnPlatform.status, 401);
    await elementOnPlatform.arrayBuffer();
    const wrongToken = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: `User ${USER_SECRET}, Element x${token}` } });
    assert.equal(wrongToken.status, 401);
    await wrongToken.arrayBuffer();
    const forged = JSON.stringify({ token: 'guess', organizationId: 1, userId: 1, instanceId: 1, jobId: 1 });
    const r = await fetch(`${srv.base}/hubs/documents/files?path=/plain.txt`, { headers: { 'x-ferry-internal': forged } });
    assert.equal(r.status, 401);
    assert.ok(!(await r.text()).includes('plain'));
  });

  it('does not serve signed links of a disabled or deleted instance', async () => {
    const inst = await srv.instance('localfs', { root: 'sec/linked' }, 'linked');
    const h = { authorization: inst.auth };
    const up = await fetch(`${srv.base}/hubs/documents/files?path=/f.txt`, { method: 'POST', headers: h, body: multipartFile('data') });
    assert.equal(up.status, 200);
    await up.arrayBuffer();
    const link: any = await (await fetch(`${srv.base}/hubs/documents/files/links?path=/f.txt`, { headers: h })).json();
    const okRes = await fetch(link.cloudElementsLink);
    assert.equal(await okRes.text(), 'data');
    (await srv.api(`/instances/${inst.id}/enabled`, { method: 'DELETE' })).body?.cancel();
    const disabled = await fetch(link.cloudElementsLink);
    assert.equal(disabled.status, 403, `link of a disabled instance → ${disabled.status}`);
    assert.ok(!(await disabled.text()).includes('data'));
    (await srv.api(`/instances/${inst.id}/enabled`, { method: 'PUT' })).body?.cancel();
    const again = await fetch(link.cloudElementsLink);
    assert.equal(again.status, 200);
    await again.arrayBuffer();
    (await srv.api(`/instances/${inst.id}`, { method: 'DELETE' })).body?.cancel();
    const deleted = await fetch(link.cloudElementsLink);
    assert.ok(deleted.status === 404 || deleted.status === 403, `link of a deleted instance → ${deleted.status}`);
    await deleted.arrayBuffer();
  });
});
