/**
 * HTTP tests of the platform API (DESIGN §1.1–1.3): the catalog routes, the headers every
 * response carries, the error body, authentication failures, CORS preflight and the OpenAPI
 * document — against a real server over real HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ORG_SECRET, USER_SECRET, startTestServer, type TestServer } from '../helpers/server.js';

const REQUEST_ID = /^[0-9a-f]{24}$/;
const EXPOSED = [
  'Elements-Returned-Count',
  'Elements-Total-Count',
  'Elements-Request-Id',
  'Elements-Next-Page-Token',
  'Elements-Trace-Id',
  'Elements-Error',
  'Content-Disposition',
];

/** Asserts the headers every response must carry; returns the request id. */
function checkCommonHeaders(res: Response): string {
  const id = res.headers.get('elements-request-id');
  assert.ok(id && REQUEST_ID.test(id), `Elements-Request-Id "${id}" is not 24 hex chars`);
  const exposed = (res.headers.get('access-control-expose-headers') ?? '').split(',').map((s) => s.trim());
  for (const h of EXPOSED) assert.ok(exposed.includes(h), `Access-Control-Expose-Headers lacks ${h}`);
  return id;
}

/** Asserts an error response: status, common headers, `{requestId, message}` matching the header. */
async function checkError(res: Response, status: number): Promise<{ requestId: string; message: string }> {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}`);
  const id = checkCommonHeaders(res);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body: any = await res.json();
  assert.equal(body.requestId, id);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  assert.ok(!/\bat .+\(.+:\d+:\d+\)/.test(body.message), 'no stack trace in the message');
  return body;
}

describe('platform API', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.close();
  });

  it('GET /elements lists the documents elements with their configuration keys', async () => {
    const res = await srv.api('/elements');
    assert.equal(res.status, 200);
    checkCommonHeaders(res);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const list: any[] = await res.json();
    const keys = list.map((e) => e.key).sort();
    assert.deepEqual(keys, ['amazons3', 'localfs', 'sftp']);
    const localfs = list.find((e) => e.key === 'localfs');
    assert.equal(localfs.hub, 'documents');
    assert.equal(typeof localfs.id, 'number');
    const root = localfs.configuration.find((c: any) => c.key === 'root');
    assert.deepEqual({ required: root.required, secret: root.secret }, { required: true, secret: false });
    const sig = localfs.configuration.find((c: any) => c.key === 'event.notification.signature.key');
    assert.equal(sig.secret, true);
    const enabled = localfs.configuration.find((c: any) => c.key === 'event.notification.enabled');
    assert.equal(enabled.defaultValue, 'false');
    const s3 = list.find((e) => e.key === 'amazons3');
    const secretKey = s3.configuration.find((c: any) => c.key === 'filemanagement.provider.secret_key');
    assert.equal(secretKey.secret, true);
    const sftp = list.find((e) => e.key === 'sftp');
    assert.equal(sftp.configuration.find((c: any) => c.key === 'password').secret, true);
  });

  it('GET /elements/{key} returns one element, 404 for an unknown key', async () => {
    const res = await srv.api('/elements/sftp');
    assert.equal(res.status, 200);
    checkCommonHeaders(res);
    const body: any = await res.json();
    assert.equal(body.key, 'sftp');
    assert.ok(body.configuration.some((c: any) => c.key === 'hostname'));

    const missing = await checkError(await srv.api('/elements/nope'), 404);
    assert.match(missing.message, /nope/);
  });

  it('GET /hubs and GET /hubs/documents/elements', async () => {
    const hubs = await srv.api('/hubs');
    assert.equal(hubs.status, 200);
    checkCommonHeaders(hubs);
    const list: any[] = await hubs.json();
    const documents = list.find((h) => h.key === 'documents');
    assert.ok(documents, 'the documents hub is listed');
    assert.deepEqual([...documents.elements].sort(), ['amazons3', 'localfs', 'sftp']);

    const res = await srv.api('/hubs/documents/elements');
    assert.equal(res.status, 200);
    const elements: any[] = await res.json();
    assert.deepEqual(elements.map((e) => e.key).sort(), ['amazons3', 'localfs', 'sftp']);
    assert.ok(elements.every((e) => e.hub === 'documents'));

    await checkError(await srv.api('/hubs/crm/elements'), 404);
  });

  it('gives every response a distinct 24-hex request id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await srv.api('/elements');
      await res.arrayBuffer();
      ids.add(checkCommonHeaders(res));
    }
    assert.equal(ids.size, 5);
  });

  it('answers 401 with the error body for missing, wrong and malformed secrets', async () => {
    const cases: [string, string | null][] = [
      ['missing header', null],
      ['empty header', ''],
      ['wrong user secret', `User wrong-user-secret, Organization ${ORG_SECRET}`],
      ['wrong organization secret', `User ${USER_SECRET}, Organization wrong-org-secret`],
      ['user only', `User ${USER_SECRET}`],
      ['organization only', `Organization ${ORG_SECRET}`],
      ['malformed part', `User ${USER_SECRET}, Organization`],
      ['unknown part name', `User ${USER_SECRET}, Organization ${ORG_SECRET}, Bearer abc`],
      ['part named twice', `User ${USER_SECRET}, User ${USER_SECRET}, Organization ${ORG_SECRET}`],
      ['bearer scheme', `Bearer ${USER_SECRET}`],
      ['secrets swapped', `User ${ORG_SECRET}, Organization ${USER_SECRET}`],
    ];
    for (const [what, header] of cases) {
      const res = await fetch(`${srv.base}/elements`, { headers: header === null ? {} : { authorization: header } });
      const body = await checkError(res, 401).catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
      assert.ok(!body.message.includes(USER_SECRET) && !body.message.includes(ORG_SECRET), `${what}: no secret echoed`);
    }
  });

  it('accepts the parts in any order, any case, with extra spaces', async () => {
    for (const header of [
      `Organization ${ORG_SECRET}, User ${USER_SECRET}`,
      `user ${USER_SECRET},organization ${ORG_SECRET}`,
      `  USER   ${USER_SECRET} ,   ORGANIZATION  ${ORG_SECRET}  `,
    ]) {
      const res = await fetch(`${srv.base}/hubs`, { headers: { authorization: header } });
      assert.equal(res.status, 200, header);
      await res.arrayBuffer();
    }
  });

  it('answers a CORS preflight without credentials', async () => {
    const res = await fetch(`${srv.base}/instances`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.ok(res.status === 200 || res.status === 204, `preflight status ${res.status}`);
    checkCommonHeaders(res);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const methods = res.headers.get('access-control-allow-methods') ?? '';
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) assert.ok(methods.includes(m), `allows ${m}`);
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    assert.ok(allowed.includes('authorization') && allowed.includes('content-type'));
    assert.ok(allowed.includes('elements-async-request'));
    await res.arrayBuffer();
  });

  it('serves the OpenAPI document listing the documents routes', async () => {
    const res = await fetch(`${srv.base}/docs/json`);
    assert.equal(res.status, 200);
    checkCommonHeaders(res);
    const doc: any = await res.json();
    assert.ok(doc.openapi || doc.swagger, 'an OpenAPI document');
    const paths = Object.keys(doc.paths ?? {});
    for (const p of [
      '/elements/api-v2/hubs/documents/files',
      '/elements/api-v2/hubs/documents/files/metadata',
      '/elements/api-v2/hubs/documents/folders',
      '/elements/api-v2/hubs/documents/folders/contents',
      '/elements/api-v2/hubs/documents/search',
      '/elements/api-v2/hubs/documents/ping',
    ]) {
      assert.ok(paths.includes(p), `OpenAPI lists ${p}`);
    }
    assert.ok(paths.includes('/elements/api-v2/instances'), 'OpenAPI lists /instances');
  });

  it('answers an unknown route with 404 and the error body', async () => {
    const body = await checkError(await srv.api('/no/such/route'), 404);
    assert.match(body.message, /no\/such\/route/);
    await checkError(await fetch(`${srv.base.replace('/elements/api-v2', '')}/other`), 404);
  });

  it('answers a URL with bad percent-encoding with 400 and the error body', async () => {
    for (const p of ['/elements/%E0%A4%A', '/hubs/documents/files/%/metadata', '/instances/%zz']) {
      const body = await checkError(await srv.api(p), 400);
      assert.match(body.message, /encod/);
    }
  });

  it('answers an unsupported method on a known path with 405, the methods it has in Allow, and the error body', async () => {
    const res = await srv.api('/hubs', { method: 'DELETE' });
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    const body = await checkError(res, 405);
    assert.match(body.message, /DELETE is not allowed on \/elements\/api-v2\/hubs; use GET or HEAD/);
    // A hub path: ping is read-only.
    const ping = await srv.api('/hubs/documents/ping', { method: 'POST', json: {} });
    assert.equal(ping.status, 405);
    assert.equal(ping.headers.get('allow'), 'GET, HEAD');
    await ping.arrayBuffer();
  });
});
