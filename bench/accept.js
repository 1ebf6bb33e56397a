// accept: async `GET /hubs/documents/ping` vs sync `GET /hubs/documents/ping` on the same server,
// same client (undici Pool, same connections and pipelining), fixed request count. The async
// callback goes to a local receiver that answers 200.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { loadConfig } from '../dist/src/config.js';
import { startFerry } from '../dist/src/server.js';

const USER = 'bench-user-secret-000000000000000000000000000';
const ORG = 'bench-org-secret-0000000000000000000000000000';

async function load(pool, count, connections, headers) {
  let sent = 0;
  let ok = 0;
  const started = process.hrtime.bigint();
  async function worker() {
    while (sent < count) {
      sent++;
      const res = await pool.request({ method: 'GET', path: '/elements/api-v2/hubs/documents/ping', headers });
      await res.body.dump();
      if (res.statusCode === 200) ok++;
    }
  }
  await Promise.all(Array.from({ length: connections }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { rps: ok / seconds, ok, seconds };
}

async function run(durability) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  let delivered = 0;
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      delivered++;
      res.writeHead(200).end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const config = loadConfig({
    PORT: '0',
    FERRY_DATA_DIR: dir,
    FERRY_USER_SECRET: USER,
    FERRY_ORG_SECRET: ORG,
    FERRY_LOG_LEVEL: 'silent',
    FERRY_RATE_LIMIT: '0',
    FERRY_DURABILITY: durability,
    FERRY_EGRESS_ALLOW: '127.0.0.1/32',
  });
  const ferry = await startFerry(config, { print: () => {} });
  const port = ferry.app.server.address().port;
  const origin = `http://127.0.0.1:${port}`;
  const created = await fetch(`${origin}/elements/api-v2/instances`, {
    method: 'POST',
    headers: { authorization: `User ${USER}, Organization ${ORG}`, 'content-type': 'application/json' },
    body: JSON.stringify({ element: { key: 'localfs' }, name: 'bench', configuration: { root: 'bench' } }),
  }).then((r) => r.json());
  const auth = `User ${USER}, Element ${created.token}`;
  const connections = 32;
  const pool = new Pool(origin, { connections, pipelining: 1 });
  const count = 20000;
  await load(pool, 2000, connections, { authorization: auth }); // warm-up
  const sync = await load(pool, count, connections, { authorization: auth });
  const asyncHeaders = {
    authorization: auth,
    'elements-async-request': 'true',
    'elements-async-callback-url': `http://127.0.0.1:${receiver.address().port}/hook`,
  };
  const asyncRun = await load(pool, count, connections, asyncHeaders);
  const deadline = Date.now() + 60_000;
  while (delivered < asyncRun.ok && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await pool.close();
  await ferry.close();
  receiver.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { sync, asyncRun, delivered };
}

export async function accept() {
  console.log('accept: async ping vs sync ping, same server and client (32 connections, 20,000 requests each)');
  console.log('| store | durability | sync ping req/s | async accept req/s | ratio | delivered |');
  console.log('|---|---|---|---|---|---|');
  for (const durability of ['normal', 'fsync']) {
    const { sync, asyncRun, delivered } = await run(durability);
    const ratio = asyncRun.rps / sync.rps;
    console.log(
      `| sqlite | ${durability} | ${sync.rps.toFixed(0)} | ${asyncRun.rps.toFixed(0)} | ${(ratio * 100).toFixed(0)} % | ${delivered}/${asyncRun.ok} |`,
    );
  }
}
