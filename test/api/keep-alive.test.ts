/**
 * Issue 21 §1: a request refused before its body was read (401, 403, 404, 409, 413, 415, 429,
 * 400) must not break the client's keep-alive connection. Each case is sent through an undici
 * Agent with ONE connection, with a small body (drained, the connection kept) and a large one
 * (answered with Connection: close), and the client's next request on that Agent must succeed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { FAST_ASYNC, startReceiver, startTestServer, USER_SECRET, type Receiver, type TestServer } from '../helpers/server.js';

const SMALL = 16 * 1024;
const LARGE = 3 * 1024 * 1024;
const BOUNDARY = 'ferry-keep-alive-test';

/** A multipart body with one part named `file` of `size` bytes. */
function multipart(size: number): Buffer {
  return Buffer.concat([
    Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    Buffer.alloc(size, 0x61),
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

interface Refusal {
  name: string;
  status: number;
  send(size: number, agent: Agent): Promise<{ statusCode: number; body: any }>;
}

describe('keep-alive clients after an early refusal', () => {
  let srv: TestServer;
  let limited: TestServer;
  let receiver: Receiver;
  let auth = '';
  let disabledAuth = '';
  let limitedAuth = '';

  before(async () => {
    receiver = await startReceiver();
    srv = await startTestServer({ ...FAST_ASYNC, FERRY_MAX_BODY: '8192', FERRY_ASYNC_MAX_BODY: '8192' });
    auth = (await srv.instance('localfs', { root: 'ka' }, 'ka')).auth;
    const off = await srv.instance('localfs', { root: 'ka-off' }, 'ka-off');
    disabledAuth = off.auth;
    assert.equal((await srv.api(`/instances/${off.id}/enabled`, { method: 'DELETE' })).status, 200);
    const seed = await fetch(`${srv.base}/hubs/documents/files?path=/exists.bin`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': MULTIPART },
      body: new Uint8Array(multipart(10)),
    });
    assert.equal(seed.status, 200);
    limited = await startTestServer({ FERRY_RATE_LIMIT: '2' });
    limitedAuth = (await limited.instance('localfs', { root: 'ka' }, 'ka')).auth;
  });
  after(async () => {
    await srv.close();
    await limited.close();
    await receiver.close();
  });

  async function call(agent: Agent, base: string, path: string, method: 'POST' | 'PATCH', headers: Record<string, string>, body: Buffer | Readable) {
    const res = await request(base + path, { method, headers, body, dispatcher: agent });
    const text = await res.body.text();
    return { statusCode: res.statusCode, body: text ? JSON.parse(text) : null, connection: res.headers.connection };
  }
  const upload = (base: string, path: string, authorization: string, extra: Record<string, string> = {}) =>
    (size: number, agent: Agent) =>
      call(agent, base, `/hubs/documents/files?path=${path}`, 'POST', { authorization, 'content-type': MULTIPART, ...extra }, multipart(size));

  const refusals = (): Refusal[] => [
    { name: 'upload with an unknown Element token', status: 401, send: upload(srv.base, '/x.bin', `User ${USER_SECRET}, Element nope`) },
    { name: 'upload to a disabled instance', status: 403, send: upload(srv.base, '/x.bin', disabledAuth) },
    {
      name: 'POST to a route that does not exist',
      status: 404,
      send: (size, agent) => call(agent, srv.base, '/hubs/documents/nowhere', 'POST', { authorization: auth, 'content-type': MULTIPART }, multipart(size)),
    },
    { name: 'upload over an existing file with overwrite=false', status: 409, send: upload(srv.base, '/exists.bin&overwrite=false', auth) },
    {
      name: 'upload streamed chunked over an existing file',
      status: 409,
      send: (size, agent) =>
        call(agent, srv.base, '/hubs/documents/files?path=/exists.bin', 'POST', { authorization: auth, 'content-type': MULTIPART }, Readable.from([multipart(size)])),
    },
    {
      name: 'JSON body over FERRY_MAX_BODY',
      status: 413,
      send: (size, agent) =>
        call(agent, srv.base, '/hubs/documents/folders', 'POST', { authorization: auth, 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ path: '/f', pad: 'x'.repeat(size) }))),
    },
    {
      name: 'async upload over FERRY_ASYNC_MAX_BODY',
      status: 413,
      send: upload(srv.base, '/async.bin', auth, { 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url }),
    },
    {
      name: 'async upload streamed chunked over FERRY_ASYNC_MAX_BODY',
      status: 413,
      send: (size, agent) =>
        call(
          agent,
          srv.base,
          '/hubs/documents/files?path=/async.bin',
          'POST',
          { authorization: auth, 'content-type': MULTIPART, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
          Readable.from([multipart(size)]),
        ),
    },
    {
      name: 'text/plain body to a JSON route',
      status: 415,
      send: (size, agent) => call(agent, srv.base, '/hubs/documents/folders', 'POST', { authorization: auth, 'content-type': 'text/plain' }, Buffer.alloc(size, 0x61)),
    },
    {
      name: 'platform route with an unknown Organization secret',
      status: 401,
      send: (size, agent) =>
        call(agent, srv.base, '/instances', 'POST', { authorization: `User ${USER_SECRET}, Organization nope`, 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ pad: 'x'.repeat(size) }))),
    },
    {
      name: 'upload without the path parameter',
      status: 400,
      send: (size, agent) => call(agent, srv.base, '/hubs/documents/files', 'POST', { authorization: auth, 'content-type': MULTIPART }, multipart(size)),
    },
  ];

  for (const size of [SMALL, LARGE]) {
    it(`after each refusal with a ${size / 1024} KiB body, the next request on the same connection succeeds`, async () => {
      for (const refusal of refusals()) {
        const agent = new Agent({ connections: 1, pipelining: 1 });
        try {
          const refused = await refusal.send(size, agent);
          assert.equal(refused.statusCode, refusal.status, `${refusal.name}: ${JSON.stringify(refused.body)}`);
          assert.ok(refused.body?.message, `${refusal.name}: the refusal has the error body`);
          for (let i = 0; i < 2; i++) {
            const next = await request(`${srv.base}/hubs/documents/files/metadata?path=/exists.bin`, { headers: { authorization: auth }, dispatcher: agent });
            assert.equal(next.statusCode, 200, `${refusal.name}: the next request`);
            assert.equal((await next.body.json() as any).path, '/exists.bin');
          }
        } finally {
          await agent.close();
        }
      }
    });
  }

  it('a small refused body is drained and the connection kept; a large one is answered with Connection: close', async () => {
    const agent = new Agent({ connections: 1 });
    try {
      const small = await upload(srv.base, '/exists.bin', auth)(SMALL, agent);
      assert.equal(small.statusCode, 409);
      assert.notEqual((small as any).connection, 'close');
      const large = await upload(srv.base, '/exists.bin', auth)(LARGE, agent);
      assert.equal(large.statusCode, 409);
      assert.equal((large as any).connection, 'close');
    } finally {
      await agent.close();
    }
  });

  it('after a 429 on an upload, the next request on the same connection succeeds', async () => {
    for (const size of [SMALL, LARGE]) {
      const agent = new Agent({ connections: 1 });
      try {
        let statusCode = 0;
        for (let i = 0; i < 4 && statusCode !== 429; i++) {
          statusCode = (await upload(limited.base, `/r${i}.bin`, limitedAuth)(size, agent)).statusCode;
        }
        assert.equal(statusCode, 429);
        const next = await request(`${limited.base}/docs/json`, { dispatcher: agent });
        assert.equal(next.statusCode, 200);
        await next.body.text();
      } finally {
        await agent.close();
      }
    }
  });
});
