/**
 * A real Prometheus (Debian's `prometheus`, installed by .ci/run) scraping a real Ferry node
 * every second (issue 14): after a known number of async requests delivered to a real
 * receiver, `ferry_events_accepted_total` has risen by exactly that number and the p99 of
 * `ferry_event_end_to_end_seconds` is a number — both asked through Prometheus' HTTP API.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/process.js';
import { FAST_ASYNC, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';

const PROMETHEUS = '/usr/bin/prometheus';
const skip = fs.existsSync(PROMETHEUS) ? false : `${PROMETHEUS} is missing (apt-get install prometheus; .ci/run does)`;
const REQUESTS = 12;

let srv: TestServer;
let rx: Receiver;
let prometheus: ChildProcess | undefined;
let dir: string;
let api = '';
let log = '';

before(async () => {
  if (skip) return;
  srv = await startTestServer(FAST_ASYNC);
  rx = await startReceiver();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-prometheus-'));
  const target = new URL(srv.base).host;
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ferry\n    static_configs:\n      - targets: ['${target}']\n`,
  );
  const port = await freePort();
  api = `http://127.0.0.1:${port}/api/v1`;
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr!.setEncoding('utf8');
  prometheus.stderr!.on('data', (c: string) => (log = (log + c).slice(-4000)));
});

after(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const gone = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await gone;
  }
  await srv?.close();
  await rx?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The value of an instant query with one result, or null when it has none (yet). */
async function query(expr: string): Promise<number | null> {
  try {
    const res = await fetch(`${api}/query?query=${encodeURIComponent(expr)}`);
    const body: any = await res.json();
    if (body.status !== 'success' || body.data.result.length === 0) return null;
    return Number(body.data.result[0].value[1]);
  } catch {
    return null; // not listening yet
  }
}

/** Polls `expr` until `ok(value)` (30 s at most); returns the last value. */
async function until(expr: string, ok: (v: number | null) => boolean): Promise<number | null> {
  let value: number | null = null;
  for (let i = 0; i < 300; i++) {
    value = await query(expr);
    if (ok(value)) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  return value;
}

test('Prometheus sees every accepted event and the end-to-end p99', { skip }, async () => {
  // Scraped at least twice before the requests: the rate below has samples on both sides.
  const up = await until('count_over_time(up{job="ferry"}[1m])', (v) => v !== null && v >= 2);
  assert.ok(up !== null && up >= 2, `Prometheus did not scrape Ferry: ${log}`);
  assert.equal(await query('up{job="ferry"}'), 1);
  const before = (await query('sum(ferry_events_accepted_total)')) ?? 0;

  const inst = await srv.instance('localfs', { root: 'prometheus' });
  for (let i = 0; i < REQUESTS; i++) {
    const res = await srv.api('/hubs/documents/ping', {
      headers: { authorization: inst.auth, 'elements-async-request': 'true', 'elements-async-callback-url': rx.url },
    });
    assert.equal(res.status, 200, await res.text());
  }
  await rx.waitFor(REQUESTS);

  const accepted = await until('sum(ferry_events_accepted_total)', (v) => v !== null && v - before >= REQUESTS);
  assert.equal(accepted! - before, REQUESTS);
  const delivered = await until('sum(ferry_event_end_to_end_seconds_count)', (v) => v !== null && v >= REQUESTS);
  assert.equal(delivered, REQUESTS);
  const p99 = await until('histogram_quantile(0.99, rate(ferry_event_end_to_end_seconds_bucket[1m]))', (v) => v !== null && Number.isFinite(v));
  assert.ok(p99 !== null && Number.isFinite(p99) && p99 > 0, `p99 is ${p99}`);
});
