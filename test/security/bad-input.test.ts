/**
 * The bad-input table (issue 7): for the platform and documents-hub routes, malformed JSON,
 * wrong types, missing fields, huge values, unicode edge cases, traversal spellings, header
 * injection and wrong or mixed credentials. Each row must answer its documented 4xx with the
 * error body `{requestId, message}` (requestId equal to the `Elements-Request-Id` header), and
 * the whole table must change nothing: the localfs tree (names, sizes, content hashes) and every
 * row of every table in the SQLite store are compared before and after.
 *
 * Requests go over a raw TCP socket so that bytes fetch or node:http refuse to send (CR/LF in a
 * header value, "..", overlong UTF-8, both Content-Length and Transfer-Encoding) reach the server
 * exactly as written.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { multipartFile, PLATFORM_AUTH, startTestServer, USER_SECRET, type TestServer } from '../helpers/server.js';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `head` (request line + headers, CRLF-joined, without the blank line) and `body` as is. */
function rawRequest(port: number, head: string, body: Buffer | string = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(15_000, () => socket.destroy(new Error('no answer within 15 s')));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let rest = text.slice(split + 4);
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        let out = '';
        for (;;) {
          const nl = rest.indexOf('\r\n');
          const size = parseInt(rest.slice(0, nl), 16);
          if (!size) break;
          out += rest.slice(nl + 2, nl + 2 + size);
          rest = rest.slice(nl + 2 + size + 2);
        }
        rest = out;
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest });
    });
    socket.write(Buffer.concat([Buffer.from(head + '\r\n\r\n', 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]));
  });
}

interface Row {
  name: string;
  method: string;
  /** Path and query after /elements/api-v2, sent byte for byte. */
  url: string;
  /** 'platform' | 'hub' | a literal Authorization value | null (none). Default by URL. */
  auth?: 'platform' | 'hub' | string | null;
  /** Extra header lines, sent verbatim (may hold CR/LF to attempt injection). */
  headers?: string[];
  /** A JSON body (string = sent as is with application/json). */
  json?: unknown;
  body?: { contentType: string; data: Buffer | string };
  /** Raw head override: the whole head is this (for smuggling attempts). */
  rawHead?: string;
  expect: number | number[];
}

const PREFIX = '/elements/api-v2';

/** Every file and folder under `dir` with size and content hash, sorted. */
function snapshotTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      const full = path.join(d, e.name);
      if (e.isDirectory()) {
        out.push(`${r}/`);
        walk(full, r);
      } else if (e.isSymbolicLink()) {
        out.push(`${r}@${fs.readlinkSync(full)}`);
      } else {
        const data = fs.readFileSync(full);
        out.push(`${r} ${data.length} ${crypto.createHash('sha256').update(data).digest('hex').slice(0, 16)}`);
      }
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Every row of every table of the SQLite store, as JSON, read through a second connection. */
function snapshotDatabase(file: string): Record<string, string> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    const out: Record<string, string> = {};
    for (const { name } of tables) {
      const rows = db.prepare(`SELECT * FROM "${name}"`).all();
      out[name] = JSON.stringify(rows.map((r) => JSON.stringify(r, (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v))).sort());
    }
    return out;
  } finally {
    db.close();
  }
}

let srv: TestServer;
let hubAuth = '';
let token = '';
let instanceId = 0;
let port = 0;
let dbFile = '';

before(async () => {
  // Egress left at its default (nothing private allowed): every loopback callback is a 400.
  srv = await startTestServer({ FERRY_MAX_BODY: String(1024 * 1024) });
  port = Number(new URL(srv.base).port);
  const inst = await srv.instance('localfs', { root: 'bad' });
  hubAuth = inst.auth;
  token = inst.token;
  instanceId = inst.id;
  const put = await fetch(`${srv.base}/hubs/documents/files?path=/keep/a.txt`, {
    method: 'POST',
    headers: { authorization: hubAuth },
    body: multipartFile('keep me'),
  });
  assert.equal(put.status, 200);
  dbFile = fs.readdirSync(srv.dataDir).map((f) => path.join(srv.dataDir, f)).find((f) => /\.(db|sqlite3?)$/.test(f)) ?? '';
});

after(async () => {
  await srv?.close();
});

function table(): Row[] {
  const long = (n: number, c = 'a') => c.repeat(n);
  const bigJson = JSON.stringify({ path: '/x', pad: long(2 * 1024 * 1024) });
  const rows: Row[] = [];
  const add = (r: Row) => rows.push(r);

  // ---- authentication: wrong and mixed forms ------------------------------------------------
  for (const [name, value] of [
    ['no Authorization', null],
    ['Bearer token', 'Bearer abc'],
    ['Basic credentials', `Basic ${Buffer.from('u:p').toString('base64')}`],
    ['wrong secrets', 'User nope, Organization nope'],
    ['user only', `User ${USER_SECRET}`],
    ['empty parts', 'User , Organization '],
    ['duplicate User part', `User ${USER_SECRET}, User x, Organization y`],
    ['garbage separators', `User=${USER_SECRET};Organization=x`],
    ['10 KB value', `User ${long(10_000)}, Organization ${long(10)}`],
    ['non-ASCII bytes', 'User \u00e9\u00e9, Organization \u00ff'],
    ['RTL override in secret', `User ${USER_SECRET}\u202e, Organization x`],
  ] as const) {
    add({ name: `platform: ${name}`, method: 'GET', url: '/instances', auth: value, expect: 401 });
    add({ name: `hub: ${name}`, method: 'GET', url: '/hubs/documents/ping', auth: value, expect: 401 });
  }
  add({ name: 'platform route with hub credentials', method: 'GET', url: '/instances', auth: 'hub', expect: 401 });
  add({ name: 'hub route with platform credentials', method: 'GET', url: '/hubs/documents/ping', auth: 'platform', expect: 401 });
  add({ name: 'hub: right element, wrong organization', method: 'GET', url: '/hubs/documents/ping', auth: `User ${USER_SECRET}, Organization wrong, Element TOKEN`, expect: 401 });
  add({ name: 'hub: forged internal header', method: 'POST', url: '/hubs/documents/folders', auth: null, headers: ['X-Ferry-Internal: 1'], json: { path: '/forged' }, expect: 401 });

  // ---- platform: instances ------------------------------------------------------------------
  const inst = (json: unknown, name: string, expect: number | number[]) =>
    add({ name: `POST /instances ${name}`, method: 'POST', url: '/instances', json, expect });
  add({ name: 'POST /instances malformed JSON', method: 'POST', url: '/instances', body: { contentType: 'application/json', data: '{"name":' }, expect: 400 });
  add({ name: 'POST /instances JSON with trailing garbage', method: 'POST', url: '/instances', body: { contentType: 'application/json', data: '{"name":"x"} x' }, expect: 400 });
  add({ name: 'POST /instances text/plain', method: 'POST', url: '/instances', body: { contentType: 'text/plain', data: 'name=x' }, expect: 415 });
  add({ name: 'POST /instances form-urlencoded', method: 'POST', url: '/instances', body: { contentType: 'application/x-www-form-urlencoded', data: 'name=x' }, expect: 415 });
  add({ name: 'POST /instances 2 MB body', method: 'POST', url: '/instances', body: { contentType: 'application/json', data: bigJson }, expect: 413 });
  add({ name: 'POST /instances __proto__ pollution', method: 'POST', url: '/instances', body: { contentType: 'application/json', data: '{"__proto__": {"admin": true}, "name": 5}' }, expect: 400 });
  inst([], 'array body', 400);
  inst('x', 'string body', 400);
  inst(null, 'null body', 400);
  inst({}, 'empty object', 400);
  inst({ element: { key: 'localfs' } }, 'missing name', 400);
  inst({ name: 'x' }, 'missing element', 400);
  inst({ element: { key: 'localfs' }, name: 42, configuration: { root: 'x' } }, 'name: 42', 400);
  inst({ element: { key: 'localfs' }, name: 'x', tags: 'x', configuration: { root: 'x' } }, 'tags: "x"', 400);
  inst({ element: { key: 'localfs' }, name: 'x', tags: [1], configuration: { root: 'x' } }, 'tags: [1]', 400);
  inst({ element: { key: 'localfs' }, name: 'x', tags: Array(101).fill('t'), configuration: { root: 'x' } }, '101 tags', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: 'root=x' }, 'configuration: string', 400);
  inst({ element: { key: 'localfs' }, name: 'x', disabled: 'yes', configuration: { root: 'x' } }, 'disabled: "yes"', 400);
  inst({ element: { id: '1' }, name: 'x', configuration: { root: 'x' } }, 'element.id: "1"', 400);
  inst({ element: { key: 42 }, name: 'x', configuration: { root: 'x' } }, 'element.key: 42', 400);
  inst({ element: { key: 'nope' }, name: 'x' }, 'unknown element', [400, 404]);
  inst({ element: { id: 999 }, name: 'x' }, 'unknown element id', [400, 404]);
  inst({ element: { key: 'localfs' }, name: long(256), configuration: { root: 'x' } }, 'name of 256 chars', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: { root: '../../../etc' } }, 'root ../../../etc', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: { root: '/etc' } }, 'root /etc', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: { root: 'a\u0000b' } }, 'root with NUL', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: { root: 'ok', 'event.notification.callback.url': 'not a url' } }, 'relative callback', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: { root: 'ok', 'event.notification.callback.url': 'https://u:p@example.com/' } }, 'callback with credentials', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: { root: 'ok', 'event.notification.callback.url': 'file:///etc/passwd' } }, 'file: callback', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: { root: 'ok', unknown_key: 'x' } }, 'unknown configuration key', 400);
  inst({ element: { key: 'localfs' }, name: 'x', configuration: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, '65 configuration keys', 400);
  add({ name: 'POST /elements/localfs/instances body names sftp', method: 'POST', url: '/elements/localfs/instances', json: { element: { key: 'sftp' }, name: 'x' }, expect: 400 });
  add({ name: 'POST /elements/nope/instances', method: 'POST', url: '/elements/nope/instances', json: { name: 'x', configuration: {} }, expect: [400, 404] });

  for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999', '1e3', '%20', '1%00', INSTANCE_ID_PLACEHOLDER + 'x']) {
    add({ name: `GET /instances/${id}`, method: 'GET', url: `/instances/${id}`, expect: 400 });
  }
  add({ name: 'GET /instances/<other org / absent>', method: 'GET', url: '/instances/987654', expect: 404 });
  add({ name: 'GET /instances 101 tags[]', method: 'GET', url: `/instances?${Array.from({ length: 101 }, () => 'tags[]=t').join('&')}`, expect: 400 });
  add({ name: 'GET /instances empty tag', method: 'GET', url: '/instances?tags[]=', expect: 400 });
  add({ name: 'PUT /instances/:id without name', method: 'PUT', url: `/instances/${INSTANCE_ID_PLACEHOLDER}`, json: { configuration: { root: 'bad' } }, expect: 400 });
  add({ name: 'PUT /instances/:id name: 5', method: 'PUT', url: `/instances/${INSTANCE_ID_PLACEHOLDER}`, json: { name: 5 }, expect: 400 });
  add({ name: 'PATCH /instances/:id change element', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}`, json: { element: { key: 'sftp' } }, expect: 400 });
  add({ name: 'PATCH /instances/:id root traversal', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}`, json: { configuration: { root: '../..' } }, expect: 400 });
  add({ name: 'PATCH /instances/:id tags: {}', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}`, json: { tags: {} }, expect: 400 });
  add({ name: 'PATCH configuration: missing propertyValue', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}/configuration/1`, json: {}, expect: 400 });
  add({ name: 'PATCH configuration: object propertyValue', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}/configuration/1`, json: { propertyValue: { a: 1 } }, expect: 400 });
  add({ name: 'PATCH configuration: unknown entry', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}/configuration/999`, json: { propertyValue: 'x' }, expect: 404 });
  add({ name: 'PATCH configuration: root traversal', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}/configuration/root`, json: { propertyValue: '../../..' }, expect: 400 });
  add({ name: 'PATCH configuration: ftp callback', method: 'PATCH', url: `/instances/${INSTANCE_ID_PLACEHOLDER}/configuration/event.notification.callback.url`, json: { propertyValue: 'ftp://example.com/' }, expect: 400 });

  // ---- platform: catalog, events, deliveries, settings --------------------------------------
  add({ name: 'GET /elements/<unknown>', method: 'GET', url: '/elements/nope', expect: 404 });
  add({ name: 'GET /elements/<RTL>', method: 'GET', url: `/elements/${encodeURIComponent('local\u202efs')}`, expect: 404 });
  add({ name: 'GET /hubs/<unknown>/elements', method: 'GET', url: '/hubs/nope/elements', expect: 404 });
  add({ name: 'unknown route', method: 'GET', url: '/nope', expect: 404 });
  add({ name: 'DELETE /elements (no such method)', method: 'DELETE', url: '/elements', expect: [404, 405] });
  for (const q of ['pageSize=501', 'pageSize=0', 'pageSize=abc', 'pageSize=-5', 'pageSize=1.5', `nextPage=${long(600)}`, 'nextPage=%00%01garbage']) {
    add({ name: `GET /instances/events?${q.slice(0, 30)}`, method: 'GET', url: `/instances/events?${q}`, expect: 400 });
  }
  add({ name: 'GET /instances/events/abc', method: 'GET', url: '/instances/events/abc', expect: 400 });
  add({ name: 'GET /instances/events/<absent>', method: 'GET', url: '/instances/events/424242', expect: 404 });
  add({ name: 'GET /instances/events/<absent>/result', method: 'GET', url: '/instances/events/424242/result', expect: 404 });
  add({ name: 'GET /instances/abc/events', method: 'GET', url: '/instances/abc/events', expect: 400 });
  for (const [label, where] of [
    ['5000 chars', `status='${long(5000)}'`],
    ['unknown status', "status='bogus'"],
    ['unknown field', "password='x'"],
    ['SQL', "status='queued'; DROP TABLE events; --"],
    ['unterminated', "status='queued"],
    ['wrong channel', "channel='email'"],
    ['NUL', "status='queued\u0000'"],
    ['RTL', "status='queued\u202e'"],
  ]) {
    add({ name: `GET deliveries where ${label}`, method: 'GET', url: `/notifications/subscriptions/deliveries?where=${encodeURIComponent(where)}`, expect: 400 });
    add({ name: `PUT deliveries where ${label}`, method: 'PUT', url: `/notifications/subscriptions/deliveries?where=${encodeURIComponent(where)}`, expect: 400 });
  }
  add({ name: 'PATCH /accounts/settings unknown policy', method: 'PATCH', url: '/accounts/settings', json: { 'notification.webhook.failure.policy': 'drop' }, expect: 400 });
  add({ name: 'PATCH /accounts/settings policy: 1', method: 'PATCH', url: '/accounts/settings', json: { 'notification.webhook.failure.policy': 1 }, expect: 400 });
  add({ name: 'PATCH /accounts/settings unknown key', method: 'PATCH', url: '/accounts/settings', json: { admin: true }, expect: 400 });
  add({ name: 'PATCH /accounts/settings array', method: 'PATCH', url: '/accounts/settings', json: [], expect: 400 });
  add({ name: 'PATCH /accounts/settings malformed', method: 'PATCH', url: '/accounts/settings', body: { contentType: 'application/json', data: '{' }, expect: 400 });

  // ---- hub: paths in every spelling ---------------------------------------------------------
  const get = (name: string, url: string, expect: number | number[] = 400) => add({ name, method: 'GET', url, auth: 'hub', expect });
  get('GET files without path', '/hubs/documents/files');
  get('GET files path of 10,000 chars', `/hubs/documents/files?path=/${long(10_000)}`);
  get('GET files path with 300-byte name', `/hubs/documents/files?path=/${long(300)}`);
  get('GET files path with NUL', '/hubs/documents/files?path=/keep/a.txt%00.png');
  get('GET files path ../', '/hubs/documents/files?path=/../../etc/passwd');
  get('GET files path ..%2f', '/hubs/documents/files?path=..%2f..%2fetc%2fpasswd');
  get('GET files path %2e%2e', '/hubs/documents/files?path=/%2e%2e/%2e%2e/etc/passwd');
  get('GET files path backslash', '/hubs/documents/files?path=..%5c..%5cetc%5cpasswd');
  get('GET files path twice-encoded', '/hubs/documents/files?path=%252e%252e%252fetc%252fpasswd', 404);
  get('GET files path overlong UTF-8 dots', '/hubs/documents/files?path=/%C0%AE%C0%AE/%C0%AE%C0%AE/etc/passwd', [400, 404]);
  get('GET files path overlong UTF-8 slash', '/hubs/documents/files?path=..%C0%AF..%C0%AFetc', [400, 404]);
  get('GET files path lone surrogate (CESU bytes)', '/hubs/documents/files?path=/a%ED%A0%80b', [400, 404]);
  get('GET files path RTL override', `/hubs/documents/files?path=${encodeURIComponent('/keep/\u202etxt.exe')}`);
  get('GET files path C1 control', `/hubs/documents/files?path=${encodeURIComponent('/keep/a\u0085b')}`);
  get('GET files path given twice', '/hubs/documents/files?path=/keep/a.txt&path=/etc/passwd');
  get('GET files of a folder', '/hubs/documents/files?path=/keep');
  get('GET file by id with bad percent-encoding', '/hubs/documents/files/%E0%A4%A');
  get('GET file by id overlong UTF-8', '/hubs/documents/files/%C0%AE%C0%AE');
  get('GET file by id with ..', `/hubs/documents/files/${encodeURIComponent(encodeURIComponent('/../../etc/passwd'))}`);
  get('GET file by id of 10,000 chars', `/hubs/documents/files/${long(10_000)}`);
  get('GET file by id lone surrogate', `/hubs/documents/files/${'%25ED%25A0%2580'}`);
  get('GET metadata path traversal', '/hubs/documents/files/metadata?path=/keep/../../x');
  get('GET links path traversal', '/hubs/documents/files/links?path=/../x');
  get('GET folder metadata with NUL', '/hubs/documents/folders/metadata?path=/keep%00');
  get('GET contents pageSize=501', '/hubs/documents/folders/contents?pageSize=501');
  get('GET contents pageSize=0', '/hubs/documents/folders/contents?pageSize=0');
  get('GET contents pageSize=x', '/hubs/documents/folders/contents?pageSize=x');
  get('GET contents where of 5,000 chars', `/hubs/documents/folders/contents?where=${encodeURIComponent(`name='${long(5000)}'`)}`);
  get('GET contents where unparsable', `/hubs/documents/folders/contents?where=${encodeURIComponent("name=='x' or 1=1")}`);
  get('GET contents where unknown field', `/hubs/documents/folders/contents?where=${encodeURIComponent("owner='root'")}`);
  get('GET contents where deep nesting', `/hubs/documents/folders/contents?where=${encodeURIComponent('('.repeat(900) + "name='x'" + ')'.repeat(900))}`);
  get('GET contents where NUL outside a literal', `/hubs/documents/folders/contents?where=${encodeURIComponent("name='x'\u0000")}`);
  get('GET contents orderBy unknown', '/hubs/documents/folders/contents?orderBy=password');
  get('GET contents orderBy of 600 chars', `/hubs/documents/folders/contents?orderBy=${long(600)}`);
  get('GET contents fetchTags=maybe', '/hubs/documents/folders/contents?fetchTags=maybe');
  get('GET contents nextPage garbage', '/hubs/documents/folders/contents?nextPage=not-a-token');
  get('GET contents of a file', '/hubs/documents/folders/contents?path=/keep/a.txt');
  get('GET contents of a missing folder', '/hubs/documents/folders/contents?path=/nope', 404);
  get('GET search startDate not a date', '/hubs/documents/search?startDate=yesterday');
  get('GET search text of 2,000 chars', `/hubs/documents/search?text=${long(2000)}`);
  get('GET search path traversal', '/hubs/documents/search?text=a&path=/../');

  // ---- hub: writes that must be refused ------------------------------------------------------
  const write = (name: string, method: string, url: string, json: unknown, expect: number | number[] = 400) =>
    add({ name, method, url, auth: 'hub', json, expect });
  write('POST folders {}', 'POST', '/hubs/documents/folders', {});
  write('POST folders path: 42', 'POST', '/hubs/documents/folders', { path: 42 });
  write('POST folders path: true', 'POST', '/hubs/documents/folders', { path: true });
  write('POST folders path: ["/a"]', 'POST', '/hubs/documents/folders', { path: ['/a'] });
  write('POST folders path: ""', 'POST', '/hubs/documents/folders', { path: '' });
  write('POST folders tags: "x"', 'POST', '/hubs/documents/folders', { path: '/t', tags: 'x' });
  write('POST folders tags: [""]', 'POST', '/hubs/documents/folders', { path: '/t', tags: [''] });
  write('POST folders tags: [256 chars]', 'POST', '/hubs/documents/folders', { path: '/t', tags: [long(256)] });
  write('POST folders 101 tags', 'POST', '/hubs/documents/folders', { path: '/t', tags: Array(101).fill('t') });
  write('POST folders name: 7', 'POST', '/hubs/documents/folders', { path: '/t', name: 7 });
  write('POST folders name with /', 'POST', '/hubs/documents/folders', { path: '/t', name: 'a/b' });
  write('POST folders name ..', 'POST', '/hubs/documents/folders', { path: '/t', name: '..' });
  write('POST folders path ..', 'POST', '/hubs/documents/folders', { path: '/../escape' });
  write('POST folders path with NUL', 'POST', '/hubs/documents/folders', { path: '/a\u0000b' });
  write('POST folders path with CR LF', 'POST', '/hubs/documents/folders', { path: '/a\r\nb' });
  write('POST folders path with lone surrogate', 'POST', '/hubs/documents/folders', { path: '/a\ud800b' });
  write('POST folders path with backslash', 'POST', '/hubs/documents/folders', { path: '\\..\\escape' });
  write('POST folders path of 10,000 chars', 'POST', '/hubs/documents/folders', { path: `/${'d/'.repeat(5000)}` });
  write('POST folders existing', 'POST', '/hubs/documents/folders', { path: '/keep' }, [400, 409]);
  add({ name: 'POST folders malformed JSON', method: 'POST', url: '/hubs/documents/folders', auth: 'hub', body: { contentType: 'application/json', data: '{"path": "/x"' }, expect: 400 });
  add({ name: 'POST folders JSON with a BOM and garbage', method: 'POST', url: '/hubs/documents/folders', auth: 'hub', body: { contentType: 'application/json', data: '\ufeff{"path"}' }, expect: 400 });
  add({ name: 'POST folders 2 MB body', method: 'POST', url: '/hubs/documents/folders', auth: 'hub', body: { contentType: 'application/json', data: bigJson }, expect: 413 });
  add({ name: 'POST folders text/plain', method: 'POST', url: '/hubs/documents/folders', auth: 'hub', body: { contentType: 'text/plain', data: '/x' }, expect: 415 });
  write('PATCH file metadata path: 42', 'PATCH', '/hubs/documents/files/metadata?path=/keep/a.txt', { path: 42 });
  write('PATCH file metadata tags: "x"', 'PATCH', '/hubs/documents/files/metadata?path=/keep/a.txt', { tags: 'x' });
  write('PATCH file metadata path ..', 'PATCH', '/hubs/documents/files/metadata?path=/keep/a.txt', { path: '/../../a.txt' });
  write('PATCH file metadata name with /', 'PATCH', '/hubs/documents/files/metadata?path=/keep/a.txt', { name: '../a.txt' });
  write('PATCH file metadata overwrite=maybe', 'PATCH', '/hubs/documents/files/metadata?path=/keep/a.txt&overwrite=maybe', { path: '/keep/b.txt' });
  write('PATCH folder metadata into itself', 'PATCH', '/hubs/documents/folders/metadata?path=/keep', { path: '/keep/inner' }, [400, 409]);
  write('POST file copy {}', 'POST', '/hubs/documents/files/copy?path=/keep/a.txt', {});
  write('POST file copy onto itself', 'POST', '/hubs/documents/files/copy?path=/keep/a.txt', { path: '/keep/a.txt' }, [400, 409]);
  write('POST file copy dest ..', 'POST', '/hubs/documents/files/copy?path=/keep/a.txt', { path: '/../a.txt' });
  write('POST file copy src ..', 'POST', '/hubs/documents/files/copy?path=/../../etc/passwd', { path: '/stolen' });
  write('POST file copy of a folder', 'POST', '/hubs/documents/files/copy?path=/keep', { path: '/k2' });
  write('POST folder copy into itself', 'POST', '/hubs/documents/folders/copy?path=/keep', { path: '/keep/inner' }, [400, 409]);
  write('POST folder copy name: 3', 'POST', '/hubs/documents/folders/copy?path=/keep', { path: '/k2', name: 3 });
  write('POST folder copy of missing', 'POST', '/hubs/documents/folders/copy?path=/missing', { path: '/k3' }, 404);
  add({ name: 'DELETE folders root', method: 'DELETE', url: '/hubs/documents/folders?path=/', auth: 'hub', expect: [400, 403] });
  add({ name: 'DELETE folders without path', method: 'DELETE', url: '/hubs/documents/folders', auth: 'hub', expect: 400 });
  add({ name: 'DELETE files of a folder', method: 'DELETE', url: '/hubs/documents/files?path=/keep', auth: 'hub', expect: [400, 404] });
  add({ name: 'DELETE files traversal', method: 'DELETE', url: '/hubs/documents/files?path=/keep/../../../bad/keep/a.txt', auth: 'hub', expect: 400 });
  add({ name: 'DELETE folders by id traversal', method: 'DELETE', url: `/hubs/documents/folders/${encodeURIComponent(encodeURIComponent('/..'))}`, auth: 'hub', expect: 400 });

  // ---- hub: uploads ------------------------------------------------------------------------
  const boundary = 'ferryboundary';
  const part = (field: string, filename: string, data: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: text/plain\r\n\r\n${data}\r\n`;
  const multipart = (body: string) => ({ contentType: `multipart/form-data; boundary=${boundary}`, data: body + `--${boundary}--\r\n` });
  add({ name: 'POST files as JSON', method: 'POST', url: '/hubs/documents/files?path=/up.txt', auth: 'hub', json: { data: 'x' }, expect: 400 });
  add({ name: 'POST files part named other', method: 'POST', url: '/hubs/documents/files?path=/up.txt', auth: 'hub', body: multipart(part('other', 'a.txt', 'x')), expect: 400 });
  add({ name: 'POST files no parts', method: 'POST', url: '/hubs/documents/files?path=/up.txt', auth: 'hub', body: multipart(''), expect: 400 });
  add({ name: 'POST files without path', method: 'POST', url: '/hubs/documents/files', auth: 'hub', body: multipart(part('file', 'a.txt', 'x')), expect: 400 });
  add({ name: 'POST files path ..', method: 'POST', url: '/hubs/documents/files?path=/../../up.txt', auth: 'hub', body: multipart(part('file', 'a.txt', 'x')), expect: 400 });
  add({ name: 'POST files existing, overwrite=false', method: 'POST', url: '/hubs/documents/files?path=/keep/a.txt', auth: 'hub', body: multipart(part('file', 'a.txt', 'replaced!')), expect: 409 });
  add({ name: 'POST files overwrite=maybe', method: 'POST', url: '/hubs/documents/files?path=/keep/a.txt&overwrite=maybe', auth: 'hub', body: multipart(part('file', 'a.txt', 'replaced!')), expect: 400 });
  add({ name: 'POST files 26 fields', method: 'POST', url: '/hubs/documents/files?path=/many.txt', auth: 'hub', body: multipart(Array.from({ length: 26 }, (_, i) => `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`).join('') + part('file', 'a.txt', 'x')), expect: [400, 413] });
  add({ name: 'POST files boundary missing', method: 'POST', url: '/hubs/documents/files?path=/nb.txt', auth: 'hub', body: { contentType: 'multipart/form-data', data: 'garbage' }, expect: [400, 415] });
  add({ name: 'POST files truncated multipart', method: 'POST', url: '/hubs/documents/files?path=/trunc.txt', auth: 'hub', body: { contentType: `multipart/form-data; boundary=${boundary}`, data: part('file', 'a.txt', 'no end') }, expect: 400 });

  // ---- hub: async controls and header injection ---------------------------------------------
  const asyncRow = (name: string, headers: string[], expect: number | number[] = 400) =>
    add({ name: `async: ${name}`, method: 'POST', url: '/hubs/documents/folders', auth: 'hub', headers, json: { path: '/async-made' }, expect });
  asyncRow('Elements-Async-Request: yes', ['Elements-Async-Request: yes', 'Elements-Async-Callback-Url: https://example.com/hook']);
  asyncRow('Elements-Async-Request: 1', ['Elements-Async-Request: 1', 'Elements-Async-Callback-Url: https://example.com/hook']);
  asyncRow('no callback URL anywhere', ['Elements-Async-Request: true']);
  for (const [label, url] of [
    ['relative', '/hook'],
    ['javascript:', 'javascript:alert(1)'],
    ['file:', 'file:///etc/passwd'],
    ['gopher:', 'gopher://example.com/'],
    ['loopback', 'http://127.0.0.1:9/hook'],
    ['localhost', 'http://localhost/hook'],
    ['sub.localhost', 'http://a.b.localhost/hook'],
    ['metadata', 'http://169.254.169.254/latest/meta-data'],
    ['10/8', 'http://10.1.2.3/'],
    ['IPv6 loopback', 'http://[::1]/'],
    ['IPv4-mapped IPv6', 'http://[::ffff:127.0.0.1]/'],
    ['ULA', 'http://[fd00::1]/'],
    ['hex IP', 'http://0x7f000001/'],
    ['decimal IP', 'http://2130706433/'],
    ['octal IP', 'http://0177.0.0.1/'],
    ['short IP', 'http://127.1/'],
    ['0.0.0.0', 'http://0.0.0.0/'],
    ['credentials in URL', 'https://user:pass@example.com/hook'],
    ['3000 chars', `https://example.com/${long(3000)}`],
    ['RTL in host', 'https://exa\u202emple.com/'],
    ['CR LF pair (two headers)', 'http://127.0.0.1/\r\nX-Injected: 1'],
  ]) {
    asyncRow(`callback ${label}`, ['Elements-Async-Request: true', `Elements-Async-Callback-Url: ${url}`]);
  }
  asyncRow('callback with bare CR', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a\rX-Injected: 1']);
  asyncRow('callback with bare LF', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a\nX-Injected: 1']);
  asyncRow('callback with NUL', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a\u0000b']);
  asyncRow('callback sent twice', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a', 'Elements-Async-Callback-Url: https://example.com/b']);
  asyncRow('Idempotency-Key of 300 chars', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: http://10.0.0.1/', `Idempotency-Key: ${long(300)}`]);
  asyncRow('Idempotency-Key with bare CR', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a', 'Idempotency-Key: a\rb']);
  asyncRow('Idempotency-Key with bare LF', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a', 'Idempotency-Key: a\nb']);
  asyncRow('Idempotency-Key CR LF pair, private callback', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: http://10.0.0.1/', 'Idempotency-Key: a\r\nX-Injected: 1']);
  asyncRow('Idempotency-Key sent twice', ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a', 'Idempotency-Key: a', 'Idempotency-Key: b']);
  add({ name: 'async: 2 MB JSON body', method: 'POST', url: '/hubs/documents/folders', auth: 'hub', headers: ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a'], body: { contentType: 'application/json', data: bigJson }, expect: 413 });
  add({ name: 'async: malformed JSON', method: 'POST', url: '/hubs/documents/folders', auth: 'hub', headers: ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a'], body: { contentType: 'application/json', data: '{"path":' }, expect: 400 });
  add({ name: 'async: path: 42', method: 'POST', url: '/hubs/documents/folders', auth: 'hub', headers: ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a'], json: { path: 42 }, expect: 400 });
  add({ name: 'async: pageSize=501', method: 'GET', url: '/hubs/documents/folders/contents?pageSize=501', auth: 'hub', headers: ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a'], expect: 400 });
  add({ name: 'async: unauthenticated', method: 'POST', url: '/hubs/documents/folders', auth: null, headers: ['Elements-Async-Request: true', 'Elements-Async-Callback-Url: https://example.com/a'], json: { path: '/x' }, expect: 401 });

  // ---- the HTTP layer itself -------------------------------------------------------------------
  add({ name: 'header of 100 KB', method: 'GET', url: '/hubs/documents/ping', auth: 'hub', headers: [`X-Big: ${long(100_000)}`], expect: [400, 431] });
  add({ name: '200 headers of 200 bytes', method: 'GET', url: '/hubs/documents/ping', auth: 'hub', headers: Array.from({ length: 200 }, (_, i) => `X-H${i}: ${long(200)}`), expect: [400, 431] });
  add({ name: 'header name with space', method: 'GET', url: '/hubs/documents/ping', auth: 'hub', headers: ['Bad Name: x'], expect: 400 });
  add({ name: 'header value with NUL', method: 'GET', url: '/hubs/documents/ping', auth: 'hub', headers: ['X-Nul: a\u0000b'], expect: 400 });
  const smuggle = (label: string, head: string, body = '') =>
    add({ name: `smuggling: ${label}`, method: 'POST', url: '', rawHead: head, body: { contentType: '', data: body }, expect: 400 });
  const host = 'Host: 127.0.0.1';
  smuggle('Content-Length + Transfer-Encoding', `POST ${PREFIX}/hubs/documents/folders HTTP/1.1\r\n${host}\r\nAuthorization: HUBAUTH\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close`, '0\r\n\r\n');
  smuggle('two different Content-Lengths', `POST ${PREFIX}/hubs/documents/folders HTTP/1.1\r\n${host}\r\nAuthorization: HUBAUTH\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 20\r\nConnection: close`, '{}');
  smuggle('Transfer-Encoding: xchunked', `POST ${PREFIX}/hubs/documents/folders HTTP/1.1\r\n${host}\r\nAuthorization: HUBAUTH\r\nContent-Type: application/json\r\nTransfer-Encoding: xchunked\r\nConnection: close`, '2\r\n{}\r\n0\r\n\r\n');
  smuggle('space before colon', `GET ${PREFIX}/hubs/documents/ping HTTP/1.1\r\n${host}\r\nAuthorization : HUBAUTH\r\nConnection: close`);
  smuggle('request line with spaces in URL', `GET ${PREFIX}/hubs/documents/files?path=/a b HTTP/1.1\r\n${host}\r\nAuthorization: HUBAUTH\r\nConnection: close`);
  smuggle('HTTP/1.1 without Host', `GET ${PREFIX}/hubs/documents/ping HTTP/1.1\r\nAuthorization: HUBAUTH\r\nConnection: close`);
  return rows;
}

const INSTANCE_ID_PLACEHOLDER = '<ID>';

async function send(row: Row): Promise<RawResponse> {
  const authValue =
    row.auth === undefined
      ? row.url.startsWith('/hubs/documents')
        ? hubAuth
        : PLATFORM_AUTH
      : row.auth === 'platform'
        ? PLATFORM_AUTH
        : row.auth === 'hub'
          ? hubAuth
          : row.auth === null
            ? null
            : row.auth.replace('TOKEN', token);
  let body: Buffer = Buffer.alloc(0);
  let contentType = '';
  if (row.json !== undefined) {
    body = Buffer.from(JSON.stringify(row.json), 'utf8');
    contentType = 'application/json';
  } else if (row.body) {
    body = Buffer.from(row.body.data as string, 'utf8');
    contentType = row.body.contentType;
  }
  if (row.rawHead) return rawRequest(port, row.rawHead.replace('HUBAUTH', hubAuth), body);
  const url = PREFIX + row.url.replaceAll(INSTANCE_ID_PLACEHOLDER, String(instanceId));
  const lines = [`${row.method} ${url} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  if (authValue !== null) lines.push(`Authorization: ${authValue}`);
  if (contentType) lines.push(`Content-Type: ${contentType}`);
  if (body.length || row.method !== 'GET') lines.push(`Content-Length: ${body.length}`);
  lines.push(...(row.headers ?? []));
  // Header bytes go out as latin1 so a test can send any byte; UTF-8 text is spelled as its bytes.
  const head = Buffer.from(lines.join('\r\n'), 'utf8').toString('latin1');
  return rawRequest(port, head, body);
}

test('every bad input answers its documented 4xx with the error body, and nothing changes', async () => {
  const rows = table();
  const treeBefore = snapshotTree(srv.config.localfsBase);
  const dbBefore = dbFile ? snapshotDatabase(dbFile) : {};
  const countsBefore = await srv.ferry.store.asyncCounts();
  const failures: string[] = [];
  for (const row of rows) {
    let res: RawResponse;
    try {
      res = await send(row);
    } catch (e) {
      failures.push(`${row.name}: ${(e as Error).message}`);
      continue;
    }
    const expected = Array.isArray(row.expect) ? row.expect : [row.expect];
    if (!expected.includes(res.status)) {
      failures.push(`${row.name}: expected ${expected.join('|')}, got ${res.status} ${res.body.slice(0, 160)}`);
      continue;
    }
    let parsed: any;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      failures.push(`${row.name}: ${res.status} body is not JSON: ${res.body.slice(0, 100)}`);
      continue;
    }
    const id = res.headers['elements-request-id'];
    if (!/^[0-9a-f]{24}$/.test(id ?? '') || parsed.requestId !== id || typeof parsed.message !== 'string' || !parsed.message) {
      failures.push(`${row.name}: error body/header mismatch: ${id} ${res.body.slice(0, 160)}`);
    }
    if (/\bat .+\.js:\d+|node_modules|SQLITE|stack/i.test(res.body)) failures.push(`${row.name}: internal detail leaked: ${res.body.slice(0, 160)}`);
  }
  // Let any wrongly accepted async job run before comparing.
  await new Promise((r) => setTimeout(r, 300));
  const treeAfter = snapshotTree(srv.config.localfsBase);
  const dbAfter = dbFile ? snapshotDatabase(dbFile) : {};
  const countsAfter = await srv.ferry.store.asyncCounts();
  console.log(`# bad inputs tried: ${rows.length}`);
  assert.deepEqual(failures, [], `${failures.length} of ${rows.length} rows failed`);
  assert.deepEqual(treeAfter, treeBefore, 'the localfs tree changed');
  assert.deepEqual(countsAfter, countsBefore, 'async counts changed');
  assert.ok(dbFile, 'the SQLite database file was found');
  for (const t of Object.keys(dbBefore)) assert.equal(dbAfter[t], dbBefore[t], `table ${t} changed`);
  assert.deepEqual(Object.keys(dbAfter), Object.keys(dbBefore));
  const list = await srv.ferry.store.listInstances(1, {});
  assert.equal(list.length, 1, 'exactly the one instance exists');
});
