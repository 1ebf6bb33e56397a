/**
 * Request logs and trace context (issue 14) on a real `ferry serve` process, its runner thread
 * on: a full walkthrough — instance with a signature key, folders, upload, download, a signed
 * link, async copies with and without a W3C traceparent, event retrieval, a metrics scrape with
 * its token, a refused secret — then the process's whole output (stdout and stderr, debug level)
 * is searched:
 * - no secret the walkthrough used appears anywhere;
 * - each answered request has exactly one `request` line with its Elements-Request-Id, method,
 *   route pattern, status, duration, organization and instance ids — never the URL;
 * - the replayed jobs' lines carry their trace id, and the webhooks continue the trace (same
 *   trace id, a new span id, tracestate passed on); a request without traceparent gets a fresh
 *   trace id, answered in Elements-Trace-Id.
 * Then SIGTERM: the node drains and exits 0.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { cliMissing, freePort, startFerryProcess, type FerryProcess } from '../helpers/process.js';
import { FAST_ASYNC, ORG_SECRET, USER_SECRET, multipartFile, startReceiver, type Receiver } from '../helpers/server.js';

const skip = cliMissing() ?? false;
const SIGNATURE_KEY = 'walkthrough-signature-key-' + crypto.randomBytes(8).toString('hex');
const METRICS_TOKEN = 'walkthrough-metrics-token-' + crypto.randomBytes(8).toString('hex');
const MASTER_KEY = crypto.randomBytes(32).toString('base64');
const TRACE_ID = crypto.randomBytes(16).toString('hex');
const PARENT_ID = crypto.randomBytes(8).toString('hex');

let dir: string;
let node: FerryProcess;
let rx: Receiver;
let output = '';
const responses: { requestId: string; method: string; status: number }[] = [];

before(async () => {
  if (skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-logs-'));
  rx = await startReceiver();
  node = await startFerryProcess({
    dataDir: dir,
    port: await freePort(),
    env: {
      ...FAST_ASYNC,
      FERRY_LOG_LEVEL: 'debug',
      FERRY_USER_SECRET: USER_SECRET,
      FERRY_ORG_SECRET: ORG_SECRET,
      FERRY_MASTER_KEY: MASTER_KEY,
      FERRY_METRICS_TOKEN: METRICS_TOKEN,
      FERRY_RUNNER_THREAD: 'on',
    },
    onStdout: (chunk) => (output += chunk),
  });
});

after(async () => {
  await node?.kill();
  await rx?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** fetch that remembers each answer's request id. */
async function call(url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, init);
  const requestId = res.headers.get('elements-request-id');
  if (requestId) responses.push({ requestId, method: init.method ?? 'GET', status: res.status });
  return res;
}

test('a full walkthrough leaves no secret in the log, one line per request, and traces its async events', { skip }, async () => {
  const platform = `User ${USER_SECRET}, Organization ${ORG_SECRET}`;
  const json = (body: unknown) => ({ 'content-type': 'application/json', body: JSON.stringify(body) });

  // An instance with a signature key and a callback URL.
  const { body: createBody, ...createHeaders } = json({
    element: { key: 'localfs' },
    name: 'walkthrough',
    configuration: { root: 'walk', 'event.notification.signature.key': SIGNATURE_KEY, 'event.notification.callback.url': rx.url },
  });
  let res = await call(`${node.base}/instances`, { method: 'POST', headers: { authorization: platform, ...createHeaders }, body: createBody });
  const instance: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(instance));
  const hubAuth = `User ${USER_SECRET}, Element ${instance.token}`;
  const hub = (p: string, init: RequestInit = {}) =>
    call(`${node.base}/hubs/documents${p}`, { ...init, headers: { authorization: hubAuth, ...(init.headers as Record<string, string>) } });

  // Folders, an upload, a download, metadata, a signed link and its use.
  const folder = json({ path: '/walk/src' });
  assert.equal((await hub('/folders', { method: 'POST', headers: { 'content-type': folder['content-type'] }, body: folder.body })).status, 200);
  assert.equal((await hub('/files?path=/walk/src/a.txt', { method: 'POST', body: multipartFile('hello', 'a.txt') })).status, 200);
  assert.equal(await (await hub('/files?path=/walk/src/a.txt')).text(), 'hello');
  const id = encodeURIComponent(encodeURIComponent('/walk/src/a.txt'));
  assert.equal((await hub(`/files/${id}/metadata`)).status, 200);
  const link: any = await (await hub('/files/links?path=/walk/src/a.txt')).json();
  const linkToken = link.cloudElementsLink.split('/links/')[1];
  assert.ok(linkToken && linkToken.length > 20);
  assert.equal(await (await call(link.cloudElementsLink)).text(), 'hello');

  // Async copies: one continuing the caller's trace, one starting a fresh trace.
  const copy = (to: string) => json({ path: to });
  const traced = copy('/walk/copy1');
  res = await hub('/folders/copy?path=/walk/src', {
    method: 'POST',
    headers: {
      'content-type': traced['content-type'],
      'elements-async-request': 'true',
      traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`,
      tracestate: 'vendor=abc',
    },
    body: traced.body,
  });
  const first: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(first));
  assert.equal(res.headers.get('elements-trace-id'), TRACE_ID);
  const fresh = copy('/walk/copy2');
  res = await hub('/folders/copy?path=/walk/src', {
    method: 'POST',
    headers: { 'content-type': fresh['content-type'], 'elements-async-request': 'true', traceparent: 'not-a-valid-traceparent' },
    body: fresh.body,
  });
  const second: any = await res.json();
  assert.equal(res.status, 200, JSON.stringify(second));
  const freshTrace = res.headers.get('elements-trace-id') ?? '';
  assert.match(freshTrace, /^[0-9a-f]{32}$/);
  assert.notEqual(freshTrace, TRACE_ID);

  const hooks = await rx.waitFor(2, 20_000);
  const hookOf = (eventId: number) => hooks.find((h) => h.body.eventId === eventId)!;
  const wh = new Webhook(Buffer.from(SIGNATURE_KEY).toString('base64'));
  for (const [eventId, traceId] of [[first.eventId, TRACE_ID], [second.eventId, freshTrace]] as const) {
    const hook = hookOf(eventId);
    assert.equal(hook.body.eventStatus, 'completed');
    wh.verify(hook.raw, hook.headers as Record<string, string>);
    const [version, hookTrace, span, flags] = String(hook.headers.traceparent).split('-');
    assert.equal(version, '00');
    assert.equal(hookTrace, traceId, 'the webhook continues the event\'s trace');
    assert.match(span, /^[0-9a-f]{16}$/);
    assert.notEqual(span, PARENT_ID, 'the webhook attempt is a new span');
    assert.equal(flags, '01');
  }
  assert.equal(hookOf(first.eventId).headers.tracestate, 'vendor=abc');
  assert.equal(hookOf(second.eventId).headers.tracestate, undefined);

  // Events, probes, a scrape with its token, and a refused secret.
  assert.equal((await call(`${node.base}/instances/events/${first.eventId}`, { headers: { authorization: platform } })).status, 200);
  assert.equal((await call(node.base.replace('/elements/api-v2', '/readyz'))).status, 200);
  const scrape = await call(node.base.replace('/elements/api-v2', '/metrics'), { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  assert.equal(scrape.status, 200);
  await scrape.text();
  assert.equal((await call(`${node.base}/instances`, { headers: { authorization: `User ${USER_SECRET}, Organization wrong-${ORG_SECRET}` } })).status, 401);

  // Let the last lines reach the pipe, then drain.
  await new Promise((r) => setTimeout(r, 300));
  const exit = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));
  node.child.kill('SIGTERM');
  assert.equal(await exit, 0, `exit code; stderr: ${node.stderr()}`);
  const all = output + node.stderr();

  for (const [name, secret] of Object.entries({
    USER_SECRET,
    ORG_SECRET,
    MASTER_KEY,
    METRICS_TOKEN,
    SIGNATURE_KEY,
    'instance token': instance.token,
    'signed link token': linkToken,
  })) {
    assert.ok(!all.includes(secret), `the ${name} appears in the log output`);
  }

  const lines = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const requestLines = lines.filter((l) => l.msg === 'request');
  for (const r of responses) {
    const mine = requestLines.filter((l) => l.requestId === r.requestId && !l.replay);
    assert.equal(mine.length, 1, `one log line for request ${r.requestId} (${r.method}, ${r.status})`);
    const [line] = mine;
    assert.equal(line.method, r.method);
    assert.equal(line.status, r.status);
    assert.equal(typeof line.route, 'string');
    assert.equal(typeof line.durationMs, 'number');
    assert.equal(line.url, undefined);
  }
  const metadataLine = requestLines.find((l) => l.route === '/elements/api-v2/hubs/documents/files/:id/metadata');
  assert.ok(metadataLine, 'the route pattern is logged');
  assert.equal(metadataLine.instanceId, instance.id);
  assert.equal(typeof metadataLine.organizationId, 'number');
  assert.ok(!JSON.stringify(requestLines).includes('a.txt'), 'no concrete path in request lines');

  for (const [eventId, traceId] of [[first.eventId, TRACE_ID], [second.eventId, freshTrace]] as const) {
    const replay = requestLines.find((l) => l.replay && l.eventId === eventId);
    assert.ok(replay, `the replay of event ${eventId} is logged`);
    assert.equal(replay.traceId, traceId, 'the replayed request\'s log line carries the trace id');
    assert.equal(replay.route, '/elements/api-v2/hubs/documents/folders/copy');
  }
  assert.ok(lines.some((l) => l.msg === 'drained'), 'the drain is logged');
});
