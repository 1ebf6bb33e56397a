/**
 * A job's request replayed through the router (async/replay.ts) answers what `inject` — and so a
 * synchronous call — answers: status, the headers the route set, and the body bytes, for JSON,
 * errors, streams, request bodies (buffers and streams), HEAD and 204; and a response destroyed
 * before it ended rejects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { replayRequest, type ReplayInput } from '../../src/async/replay.js';

async function app(): Promise<FastifyInstance> {
  const a = Fastify();
  a.get('/json', async (request) => ({ hello: 'world', host: request.headers.host, ip: request.ip }));
  a.get('/fail', async (_request, reply) => reply.code(409).header('x-why', 'because').send({ message: 'taken' }));
  a.get('/throw', async () => {
    throw Object.assign(new Error('no such file'), { statusCode: 404 });
  });
  a.get('/stream', async (_request, reply) => reply.type('application/octet-stream').send(Readable.from([Buffer.from('abc'), Buffer.from('def')])));
  a.get('/empty', async (_request, reply) => reply.code(204).send());
  a.get('/broken', async (_request, reply) => {
    const body = new Readable({ read() {} });
    body.push('partial');
    setTimeout(() => body.destroy(new Error('the backend went away')), 10);
    return reply.type('text/plain').send(body);
  });
  a.post('/echo', async (request) => ({ got: request.body, length: request.headers['content-length'] ?? null }));
  a.addContentTypeParser('application/octet-stream', (_request, payload, done) => {
    const chunks: Buffer[] = [];
    payload.on('data', (c: Buffer) => chunks.push(c));
    payload.on('end', () => done(null, Buffer.concat(chunks)));
    payload.on('error', done);
  });
  a.put('/bytes', async (request) => ({ size: (request.body as Buffer).length }));
  await a.ready();
  return a;
}

/** The same request through inject and through the replay; both answers, comparable. */
async function both(a: FastifyInstance, input: () => ReplayInput) {
  const injected = await a.inject(input() as any);
  const replayed = await replayRequest(a.routing, input());
  // What the connection adds, not the route: the date, keep-alive and chunked framing.
  const headers = (h: Record<string, unknown>) => {
    const { date: _date, connection: _connection, 'transfer-encoding': _framing, ...rest } = h;
    return rest;
  };
  return {
    injected: { statusCode: injected.statusCode, headers: headers(injected.headers), body: injected.rawPayload.toString('utf8') },
    replayed: { statusCode: replayed.statusCode, headers: headers(replayed.headers), body: replayed.rawPayload.toString('utf8') },
  };
}

test('a replay answers what inject answers', async () => {
  const a = await app();
  try {
    const cases: (() => ReplayInput)[] = [
      () => ({ method: 'GET', url: '/json', headers: {} }),
      () => ({ method: 'GET', url: '/json?x=1', headers: { 'x-custom': 'yes' } }),
      () => ({ method: 'GET', url: '/fail', headers: {} }),
      () => ({ method: 'GET', url: '/throw', headers: {} }),
      () => ({ method: 'GET', url: '/nowhere', headers: {} }),
      () => ({ method: 'GET', url: '/stream', headers: {} }),
      () => ({ method: 'GET', url: '/empty', headers: {} }),
      () => ({ method: 'HEAD', url: '/json', headers: {} }),
      () => ({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: Buffer.from('{"a":[1,2]}') }),
      () => ({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: Buffer.from('{"a":') }),
      () => ({ method: 'PUT', url: '/bytes', headers: { 'content-type': 'application/octet-stream' }, payload: Readable.from([Buffer.alloc(70_000, 1), Buffer.alloc(30_000, 2)]) }),
    ];
    for (const input of cases) {
      const { injected, replayed } = await both(a, input);
      assert.deepEqual(replayed, injected, `${input().method} ${input().url}`);
    }
    const json = await replayRequest(a.routing, { method: 'GET', url: '/json', headers: {} });
    assert.deepEqual(JSON.parse(json.rawPayload.toString()), { hello: 'world', host: 'localhost:80', ip: '127.0.0.1' });
    const put = await replayRequest(a.routing, { method: 'PUT', url: '/bytes', headers: { 'content-type': 'application/octet-stream' }, payload: Readable.from([Buffer.alloc(100_000)]) });
    assert.deepEqual(JSON.parse(put.rawPayload.toString()), { size: 100_000 });
  } finally {
    await a.close();
  }
});

test('a response destroyed before it ended rejects the replay, as inject does', async () => {
  const a = await app();
  try {
    await assert.rejects(a.inject({ method: 'GET', url: '/broken' }));
    await assert.rejects(replayRequest(a.routing, { method: 'GET', url: '/broken', headers: {} }), /destroyed before completion/);
  } finally {
    await a.close();
  }
});
