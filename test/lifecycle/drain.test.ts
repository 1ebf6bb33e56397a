/**
 * Graceful drain (issue 14) with real `ferry serve` processes and a real receiver:
 * - /readyz answers 503 at once and the listener closes, while a request in flight is answered;
 * - SQLite: SIGTERM during a long folder copy — the copy finishes within FERRY_DRAIN_TIMEOUT, its
 *   webhook is delivered, exit 0; SIGTERM during a webhook to a receiver that does not answer —
 *   exit 0 after the (short) drain timeout, and the next start delivers it;
 * - PostgreSQL, two nodes: the same two cases with a 1 s drain timeout and long leases: the
 *   draining node releases the unfinished job or webhook, and the other node takes it over long
 *   before its lease would have expired.
 * Every case ends with the ledger balanced: every accepted event delivered.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cliMissing, freePort, startFerryProcess, type FerryProcess } from '../helpers/process.js';
import { clusterSkipReason, startCluster, type Cluster } from '../helpers/cluster.js';
import { FAST_ASYNC, ORG_SECRET, PLATFORM_AUTH, USER_SECRET, startTestServer } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FILES = 2500;

/**
 * A webhook receiver that holds requests without answering while `hold` is true (a slow
 * receiver), and answers 200 otherwise; it counts delivered event ids.
 */
async function slowReceiver() {
  const delivered = new Set<number>();
  const held: http.ServerResponse[] = [];
  let arrivals = 0;
  const state = { hold: false };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      arrivals++;
      if (state.hold) {
        held.push(res);
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      delivered.add(body.eventId);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    state,
    delivered,
    held,
    arrivals: () => arrivals,
    async waitFor(check: () => boolean, timeoutMs: number, what: string) {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type SlowReceiver = Awaited<ReturnType<typeof slowReceiver>>;

/** A folder of FILES small files: copying it takes a while. */
function makeTree(folder: string): void {
  fs.mkdirSync(folder, { recursive: true });
  const content = Buffer.alloc(1024, 7);
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(folder, `f${i}.bin`), content);
}

async function createInstance(base: string, root: string): Promise<string> {
  const res = await fetch(`${base}/instances`, {
    method: 'POST',
    headers: { authorization: PLATFORM_AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ element: { key: 'localfs' }, name: `drain-${root}`, configuration: { root } }),
  });
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return `User ${USER_SECRET}, Element ${body.token}`;
}

async function asyncCall(base: string, auth: string, callback: string, p: string, init: { method?: string; json?: unknown } = {}): Promise<number> {
  const res = await fetch(`${base}/hubs/documents${p}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: auth,
      'elements-async-request': 'true',
      'elements-async-callback-url': callback,
      ...(init.json ? { 'content-type': 'application/json' } : {}),
    },
    body: init.json ? JSON.stringify(init.json) : undefined,
  });
  const body: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.eventId;
}

async function execution(base: string, eventId: number): Promise<string> {
  const res = await fetch(`${base}/instances/events/${eventId}`, { headers: { authorization: PLATFORM_AUTH } });
  return ((await res.json()) as any).execution?.state ?? 'unknown';
}

/** Waits until the event's job runs (or already ran: a fast machine). */
async function untilRunning(base: string, eventId: number): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const state = await execution(base, eventId);
    if (state !== 'dispatched') return state;
    await sleep(10);
  }
  return 'dispatched';
}

/** SIGTERM; resolves with the exit code. */
function terminate(child: FerryProcess['child']): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test('draining: /readyz answers 503 and a request in flight is answered, on a listener that takes no new connection', async () => {
  const srv = await startTestServer(FAST_ASYNC);
  cleanups.push(() => srv.close());
  const { port } = srv.ferry.app.server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => (received += c));
  const ended = new Promise((resolve) => socket.once('close', resolve));
  // A request whose body is still arriving when the drain starts…
  const body = JSON.stringify({ name: 'in-flight' });
  socket.write(
    `PUT /elements/api-v2/instances/999999 HTTP/1.1\r\nHost: x\r\nAuthorization: ${PLATFORM_AUTH}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
  );
  await sleep(200);
  const drained = srv.ferry.drain(Date.now() + 10_000);
  await sleep(100);
  // …no new connection is accepted…
  const refused = await fetch(srv.base.replace('/elements/api-v2', '/healthz')).then(
    () => false,
    () => true,
  );
  assert.ok(refused, 'a new connection is refused while draining');
  // …the request in flight is answered, and a probe pipelined behind it is told: unready.
  socket.write(`${body.slice(5)}GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n`);
  await ended;
  const report = await drained;
  assert.equal(report.requestsFinished, true);
  const answers = received.split(/(?=HTTP\/1\.1 )/);
  assert.equal(answers.length, 2, received);
  assert.match(answers[0], /^HTTP\/1\.1 404 /, 'the request in flight got its answer');
  assert.match(answers[1], /^HTTP\/1\.1 503 /);
  assert.match(answers[1], /connection: close/i);
  const probe = JSON.parse(answers[1].slice(answers[1].indexOf('\r\n\r\n') + 4));
  assert.equal(probe.status, 'unready');
  assert.equal(probe.checks.drain, 'draining: this node is stopping');
});

describe('SIGTERM on SQLite', { skip: cliMissing() ?? false }, () => {
  async function node(dir: string, port: number, env: Record<string, string> = {}): Promise<FerryProcess> {
    const proc = await startFerryProcess({
      dataDir: dir,
      port,
      env: { ...FAST_ASYNC, FERRY_USER_SECRET: USER_SECRET, FERRY_ORG_SECRET: ORG_SECRET, ...env },
    });
    cleanups.push(() => proc.kill());
    return proc;
  }

  test('during a long folder copy: the copy finishes and is delivered, exit 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-drain-'));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const rx = await slowReceiver();
    cleanups.push(() => rx.close());
    const proc = await node(dir, await freePort());
    const auth = await createInstance(proc.base, 'copy');
    makeTree(path.join(dir, 'files', 'copy', 'src'));
    const pings = [await asyncCall(proc.base, auth, rx.url, '/ping'), await asyncCall(proc.base, auth, rx.url, '/ping')];
    const copy = await asyncCall(proc.base, auth, rx.url, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst' } });
    const state = await untilRunning(proc.base, copy);
    assert.notEqual(state, 'dispatched', 'the copy started');
    assert.equal(await terminate(proc.child), 0, proc.stderr());
    assert.match(proc.stderr(), /drained: 0 job\(s\) and 0 webhook\(s\) released/);
    // The drain waited for the copy and its webhook: delivered before the exit.
    assert.ok(rx.delivered.has(copy), 'the copy was delivered before the node exited');
    for (const id of pings) assert.ok(rx.delivered.has(id), `event ${id} delivered`);
    assert.equal(fs.readdirSync(path.join(dir, 'files', 'copy', 'dst')).length, FILES);
  });

  test('during a webhook to a receiver that does not answer: exit 0 after the drain timeout, the next start delivers it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-drain-'));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const rx = await slowReceiver();
    cleanups.push(() => rx.close());
    const port = await freePort();
    const env = { FERRY_DRAIN_TIMEOUT: '1', FERRY_DELIVERY_TIMEOUT: '60000' };
    const proc = await node(dir, port, env);
    const auth = await createInstance(proc.base, 'slow');
    rx.state.hold = true;
    const ids = [await asyncCall(proc.base, auth, rx.url, '/ping'), await asyncCall(proc.base, auth, rx.url, '/ping')];
    await rx.waitFor(() => rx.held.length >= 2, 20_000, 'both webhook attempts in flight');
    assert.equal(await terminate(proc.child), 0, proc.stderr());
    assert.match(proc.stderr(), /drained: 0 job\(s\) and 2 webhook\(s\) released/);
    for (const res of rx.held.splice(0)) res.destroy();
    rx.state.hold = false;
    const next = await node(dir, port, env);
    await rx.waitFor(() => ids.every((id) => rx.delivered.has(id)), 30_000, 'every accepted event delivered after the restart');
    await next.stop();
  });

  test('a second signal exits at once; the next start delivers what was in flight', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-drain-'));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const rx = await slowReceiver();
    cleanups.push(() => rx.close());
    const port = await freePort();
    const env = { FERRY_DRAIN_TIMEOUT: '600', FERRY_DELIVERY_TIMEOUT: '600000' };
    const proc = await node(dir, port, env);
    const auth = await createInstance(proc.base, 'twice');
    rx.state.hold = true;
    const id = await asyncCall(proc.base, auth, rx.url, '/ping');
    await rx.waitFor(() => rx.held.length >= 1, 20_000, 'a webhook attempt in flight');
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
    proc.child.kill('SIGTERM');
    await rx.waitFor(() => proc.stderr().includes('draining'), 10_000, 'the drain to start');
    proc.child.kill('SIGTERM');
    assert.equal(await exited, 143, proc.stderr());
    assert.match(proc.stderr(), /SIGTERM again: exiting at once/);
    for (const res of rx.held.splice(0)) res.destroy();
    rx.state.hold = false;
    const next = await node(dir, port, env);
    await rx.waitFor(() => rx.delivered.has(id), 30_000, 'the event delivered after the restart');
    await next.stop();
  });
});

describe('SIGTERM on PostgreSQL with two nodes', async () => {
  const skip = (await clusterSkipReason()) ?? false;
  /** Long leases: a takeover within the test's wait proves the drain released the work. */
  const ENV = { FERRY_DRAIN_TIMEOUT: '1', FERRY_LEASE: '120000', FERRY_DELIVERY_TIMEOUT: '120000' };

  async function cluster(): Promise<Cluster> {
    const c = await startCluster(['all'], ENV);
    cleanups.push(() => c.close());
    return c;
  }

  test('during a long folder copy: the draining node releases the job, the other node runs it at once', { skip }, async () => {
    const c = await cluster();
    const rx = await slowReceiver();
    cleanups.push(() => rx.close());
    const [first] = c.nodes;
    const auth = await createInstance(first.base!, 'pgcopy');
    makeTree(path.join(c.localfsBase, 'pgcopy', 'src'));
    const ping = await asyncCall(first.base!, auth, rx.url, '/ping');
    const copy = await asyncCall(first.base!, auth, rx.url, '/folders/copy?path=/src', { method: 'POST', json: { path: '/dst', overwrite: true } });
    const state = await untilRunning(first.base!, copy);
    assert.notEqual(state, 'dispatched', 'the copy started on the first node');
    // The second node joins only now: the copy is certainly the first node's.
    const second = await c.addNode('all', ENV);
    const started = Date.now();
    assert.equal(await terminate(first.child), 0, first.stderr());
    // Unless this machine copied 2500 files within the 1 s drain, the copy was released.
    assert.match(first.stderr(), /drained: [01] job\(s\)/);
    await rx.waitFor(() => rx.delivered.has(copy) && rx.delivered.has(ping), 60_000, 'the copy delivered by the second node');
    assert.ok(Date.now() - started < 120_000, 'taken over before its lease would have expired');
    let status = '';
    for (let i = 0; i < 100 && status !== 'NOTIFIED'; i++) {
      status = (await c.query('SELECT status FROM events WHERE id = $1', [copy]))[0].status;
      if (status !== 'NOTIFIED') await sleep(100);
    }
    assert.equal(status, 'NOTIFIED');
    await second.stop();
  });

  test('during a webhook to a receiver that does not answer: released, the other node delivers it at once', { skip }, async () => {
    const c = await cluster();
    const rx = await slowReceiver();
    cleanups.push(() => rx.close());
    const [first] = c.nodes;
    const auth = await createInstance(first.base!, 'pgslow');
    rx.state.hold = true;
    const ids = [await asyncCall(first.base!, auth, rx.url, '/ping'), await asyncCall(first.base!, auth, rx.url, '/ping')];
    await rx.waitFor(() => rx.held.length >= 2, 20_000, 'both webhook attempts in flight');
    const second = await c.addNode('all', ENV);
    rx.state.hold = false;
    assert.equal(await terminate(first.child), 0, first.stderr());
    assert.match(first.stderr(), /drained: 0 job\(s\) and 2 webhook\(s\) released/);
    for (const res of rx.held.splice(0)) res.destroy();
    await rx.waitFor(() => ids.every((id) => rx.delivered.has(id)), 60_000, 'every accepted event delivered by the second node');
    // The receiver has answered; the delivery is recorded a moment later.
    let open = -1;
    for (let i = 0; i < 100 && open !== 0; i++) {
      open = (await c.query('SELECT count(*)::int AS n FROM events WHERE status <> $1', ['NOTIFIED']))[0].n;
      if (open !== 0) await sleep(100);
    }
    assert.equal(open, 0, 'the ledger balances: every event notified');
    await second.stop();
  });
});
