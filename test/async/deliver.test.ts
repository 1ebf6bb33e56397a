/**
 * One delivery attempt against real loopback HTTP servers: how each kind of answer (or silence)
 * is classified, that redirects are not followed, and that slow or huge responses cannot hold
 * the attempt past its timeout.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createEgressPolicy } from '../../src/async/egress.js';
import { deliver } from '../../src/async/deliver.js';
import { signNotification } from '../../src/async/signing.js';

const policy = createEgressPolicy(['127.0.0.1/32']);
const dispatcher = policy.dispatcher({ connectTimeoutMs: 2000 });
const servers: Array<() => Promise<void>> = [];

after(async () => {
  await dispatcher.destroy();
  await Promise.all(servers.map((close) => close()));
});

interface Received {
  method?: string;
  path?: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Starts a loopback HTTP server; records every request it gets. */
async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      handler(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  servers.push(close);
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, received };
}

const key = 'k3y';
const body = JSON.stringify({ eventId: 7, eventStatus: 'completed', statusCode: 200, response: {} });
const headers = signNotification(body, key, 'wh_test_1', Math.floor(Date.now() / 1000));

function target(url: string) {
  return { url, body, headers };
}

test('200 → delivered; the receiver gets the exact body and signed headers', async () => {
  const s = await serve((_req, res) => res.end('{"ok":true}'));
  const out = await deliver(target(`${s.url}/hooks/ferry?x=1`), { dispatcher, timeoutMs: 5000 });
  assert.equal(out.kind, 'delivered');
  assert.equal(out.statusCode, 200);
  assert.equal(out.error, undefined);
  assert.ok(out.durationMs >= 0 && out.durationMs < 5000);
  assert.equal(s.received.length, 1);
  const got = s.received[0];
  assert.equal(got.method, 'POST');
  assert.equal(got.path, '/hooks/ferry?x=1');
  assert.equal(got.body, body);
  assert.equal(got.headers['content-type'], 'application/json');
  assert.equal(got.headers['elements-webhook-id'], 'wh_test_1');
  assert.equal(got.headers['elements-webhook-signature'], headers['elements-webhook-signature']);
  assert.equal(got.headers['webhook-signature'], headers['webhook-signature']);
  assert.equal(got.headers['content-length'], String(Buffer.byteLength(body)));
});

test('204 → delivered', async () => {
  const s = await serve((_req, res) => {
    res.statusCode = 204;
    res.end();
  });
  const out = await deliver(target(s.url), { dispatcher, timeoutMs: 5000 });
  assert.deepEqual({ kind: out.kind, statusCode: out.statusCode }, { kind: 'delivered', statusCode: 204 });
});

test('500 with Retry-After seconds → retry honouring it', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(500, { 'retry-after': '30' });
    res.end('boom');
  });
  const out = await deliver(target(s.url), { dispatcher, timeoutMs: 5000 });
  assert.equal(out.kind, 'retry');
  assert.equal(out.statusCode, 500);
  assert.equal(out.retryAfterMs, 30_000);
  assert.equal(out.error, 'receiver answered 500');
});

test('503 with an HTTP-date Retry-After; 429 and 400 without → retry', async () => {
  const when = new Date(Date.now() + 120_000).toUTCString();
  const s = await serve((req, res) => {
    if (req.url === '/503') res.writeHead(503, { 'retry-after': when });
    else res.writeHead(Number(req.url!.slice(1)));
    res.end();
  });
  const out = await deliver(target(`${s.url}/503`), { dispatcher, timeoutMs: 5000 });
  assert.equal(out.kind, 'retry');
  assert.ok(out.retryAfterMs! > 100_000 && out.retryAfterMs! <= 120_000, String(out.retryAfterMs));
  for (const code of [429, 400, 404, 401]) {
    const o = await deliver(target(`${s.url}/${code}`), { dispatcher, timeoutMs: 5000 });
    assert.deepEqual({ kind: o.kind, statusCode: o.statusCode, retryAfterMs: o.retryAfterMs }, { kind: 'retry', statusCode: code, retryAfterMs: undefined });
  }
});

test('302 is not followed → retry', async () => {
  const s = await serve((req, res) => {
    if (req.url === '/elsewhere') return void res.end('should not be reached');
    res.writeHead(302, { location: '/elsewhere' });
    res.end();
  });
  const out = await deliver(target(`${s.url}/start`), { dispatcher, timeoutMs: 5000 });
  assert.deepEqual({ kind: out.kind, statusCode: out.statusCode }, { kind: 'retry', statusCode: 302 });
  assert.deepEqual(s.received.map((r) => r.path), ['/start']);
});

test('410 → gone', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(410);
    res.end('unsubscribed');
  });
  const out = await deliver(target(s.url), { dispatcher, timeoutMs: 5000 });
  assert.deepEqual({ kind: out.kind, statusCode: out.statusCode }, { kind: 'gone', statusCode: 410 });
});

test('connection refused (closed port) → retry with a short error', async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const out = await deliver(target(`http://127.0.0.1:${port}/`), { dispatcher, timeoutMs: 5000 });
  assert.deepEqual({ kind: out.kind, error: out.error, statusCode: out.statusCode }, { kind: 'retry', error: 'connection refused', statusCode: undefined });
});

test('egress refusal → retry naming the policy, nothing sent', async () => {
  const s = await serve((_req, res) => res.end());
  const strict = createEgressPolicy([]).dispatcher();
  try {
    const out = await deliver(target(s.url), { dispatcher: strict, timeoutMs: 5000 });
    assert.equal(out.kind, 'retry');
    assert.match(out.error!, /^Egress refused: 127\.0\.0\.1 is a loopback address.*FERRY_EGRESS_ALLOW/);
    assert.equal(s.received.length, 0);
  } finally {
    await strict.destroy();
  }
});

test('a receiver that never answers → retry after timeoutMs', async () => {
  const silent = await serve(() => {
    /* reads the request, never responds */
  });
  const out = await deliver(target(silent.url), { dispatcher, timeoutMs: 300 });
  assert.equal(out.kind, 'retry');
  assert.equal(out.error, 'timed out after 300 ms');
  assert.equal(out.statusCode, undefined);
  assert.ok(out.durationMs >= 290 && out.durationMs < 1500, `took ${out.durationMs} ms`);
});

test('a receiver that trickles its status line forever → retry after timeoutMs', async () => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.write('HTTP/1.1 200 OK\r\n');
    const timer = setInterval(() => socket.write('X-Slow: a\r\n'), 20);
    socket.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as net.AddressInfo).port;
  const out = await deliver(target(`http://127.0.0.1:${port}/`), { dispatcher, timeoutMs: 300 });
  assert.equal(out.kind, 'retry');
  assert.equal(out.error, 'timed out after 300 ms');
  assert.ok(out.durationMs < 1500, `took ${out.durationMs} ms`);
});

test('a 2xx whose body trickles forever is delivered and bounded by timeoutMs', async () => {
  let closed = false;
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('.'), 20);
    res.on('close', () => {
      closed = true;
      clearInterval(timer);
    });
  });
  const out = await deliver(target(s.url), { dispatcher, timeoutMs: 400 });
  assert.deepEqual({ kind: out.kind, statusCode: out.statusCode }, { kind: 'delivered', statusCode: 200 });
  assert.ok(out.durationMs >= 390 && out.durationMs < 1500, `took ${out.durationMs} ms`);
  await waitFor(() => closed);
});

test('a 500 whose body trickles forever is a retry bounded by timeoutMs', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(500);
    const timer = setInterval(() => res.write('.'), 20);
    res.on('close', () => clearInterval(timer));
  });
  const out = await deliver(target(s.url), { dispatcher, timeoutMs: 300 });
  assert.deepEqual({ kind: out.kind, statusCode: out.statusCode }, { kind: 'retry', statusCode: 500 });
  assert.ok(out.durationMs < 1500, `took ${out.durationMs} ms`);
});

test('a huge response body is cut off after maxResponseBytes', async () => {
  let sent = 0;
  let closed = false;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) }); // claims 1 GiB
    const pump = () => {
      while (!closed && sent < 1024 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    res.on('close', () => (closed = true));
    pump();
  });
  const out = await deliver(target(s.url), { dispatcher, timeoutMs: 10_000, maxResponseBytes: 16 * 1024 });
  assert.deepEqual({ kind: out.kind, statusCode: out.statusCode }, { kind: 'delivered', statusCode: 200 });
  assert.ok(out.durationMs < 5000, `took ${out.durationMs} ms`);
  await waitFor(() => closed);
  assert.ok(sent < 64 * 1024 * 1024, `server pushed ${sent} bytes before Ferry hung up`);
});

test('errors never carry headers, body or URL query', async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const out = await deliver(target(`http://127.0.0.1:${port}/h?token=SECRET123`), { dispatcher, timeoutMs: 2000 });
  for (const secret of ['SECRET123', headers['elements-webhook-signature'], headers['webhook-signature'], body]) {
    assert.ok(!out.error!.includes(secret));
  }
});

async function waitFor(condition: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
