/**
 * Test harness: a real Ferry server (in-process, real HTTP on an ephemeral loopback port, a
 * fresh temp data dir), helpers to call it, and a real webhook receiver.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config.js';
import { pgUrl } from './postgres.js';
import { startFerry, type Ferry } from '../../src/server.js';

export const USER_SECRET = 'test-user-secret-0123456789abcdef0123456789';
export const ORG_SECRET = 'test-org-secret-0123456789abcdef0123456789ab';
export const PLATFORM_AUTH = `User ${USER_SECRET}, Organization ${ORG_SECRET}`;

export interface TestServer {
  ferry: Ferry;
  config: Config;
  dataDir: string;
  /** http://127.0.0.1:PORT/elements/api-v2 */
  base: string;
  /** fetch against the API base with platform credentials unless `headers.authorization` is given. */
  api(pathAndQuery: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** Creates an instance and returns its id, token and hub Authorization header. */
  instance(elementKey: string, configuration: Record<string, unknown>, name?: string): Promise<{ id: number; token: string; auth: string; body: any }>;
  close(): Promise<void>;
}

/**
 * The store backend tests run on: SQLite unless FERRY_TEST_BACKEND=postgres, in which case each
 * data dir gets its own PostgreSQL schema (named after the dir, so a restart on the same dir
 * finds the same data).
 */
export function testBackend(): 'sqlite' | 'postgres' {
  return process.env.FERRY_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
}

/** The PostgreSQL schema of a test data dir (the same for every start on that dir). */
export function schemaFor(dir: string): string {
  return `ferry_t_${crypto.createHash('sha256').update(dir).digest('hex').slice(0, 20)}`;
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl() });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The store settings of the test server on data dir `dir` (none on SQLite: the store is in the
 * dir), for a CLI command that must open the same store.
 */
export function storeEnv(dir: string): Record<string, string> {
  return testBackend() === 'postgres' ? { FERRY_DATABASE_URL: pgUrl(), FERRY_DATABASE_SCHEMA: schemaFor(dir) } : {};
}

/** Drops the PostgreSQL schema of data dir `dir` (tests that pass their own dir clean up with it). */
export async function dropStoreOf(dir: string): Promise<void> {
  if (testBackend() === 'postgres') await dropSchema(schemaFor(dir));
}

/** Starts Ferry on a temp data dir; `env` adds or overrides FERRY_* settings. */
export async function startTestServer(env: Record<string, string> = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-test-'));
  const backendEnv = storeEnv(dir);
  const config = loadConfig({
    ...backendEnv,
    PORT: '0',
    HOST: '127.0.0.1',
    FERRY_DATA_DIR: dir,
    FERRY_USER_SECRET: USER_SECRET,
    FERRY_ORG_SECRET: ORG_SECRET,
    FERRY_LOG_LEVEL: 'silent',
    FERRY_RATE_LIMIT: '0',
    FERRY_AUTH_FAILURE_LIMIT: '0',
    ...env,
  });
  const ferry = await startFerry(config, { print: () => {} });
  const address = ferry.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  config.port = port;
  config.publicUrl = `http://127.0.0.1:${port}`;
  const base = `http://127.0.0.1:${port}/elements/api-v2`;
  const api: TestServer['api'] = (p, init = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', PLATFORM_AUTH);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(base + p, { ...init, headers, body });
  };
  return {
    ferry,
    config,
    dataDir: dir,
    base,
    api,
    async instance(elementKey, configuration, name = `${elementKey}-instance`) {
      const res = await api('/instances', { method: 'POST', json: { element: { key: elementKey }, name, configuration } });
      const body: any = await res.json();
      if (res.status !== 200) throw new Error(`instance creation failed: ${res.status} ${JSON.stringify(body)}`);
      return { id: body.id, token: body.token, auth: `User ${USER_SECRET}, Element ${body.token}`, body };
    },
    async close() {
      await ferry.close();
      if (!dataDir) {
        fs.rmSync(dir, { recursive: true, force: true });
        if (backendEnv.FERRY_DATABASE_SCHEMA) await dropSchema(backendEnv.FERRY_DATABASE_SCHEMA);
      }
    },
  };
}

export interface ReceivedHook {
  at: number;
  url: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: any;
}

export interface Receiver {
  url: string;
  port: number;
  hooks: ReceivedHook[];
  /** Decides each answer: status code (and optional headers); default 200. */
  respond: (hook: ReceivedHook, index: number) => { status: number; headers?: Record<string, string> };
  /** Resolves when `count` hooks matching `filter` have arrived (rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number, filter?: (h: ReceivedHook) => boolean): Promise<ReceivedHook[]>;
  close(): Promise<void>;
}

/** A real HTTP webhook receiver on a loopback port. */
export async function startReceiver(port = 0): Promise<Receiver> {
  const hooks: ReceivedHook[] = [];
  const waiters = new Set<() => void>();
  const receiver: Receiver = {
    url: '',
    port: 0,
    hooks,
    respond: () => ({ status: 200 }),
    waitFor(count, timeoutMs = 10_000, filter = () => true) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const matching = hooks.filter(filter);
          if (matching.length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(matching);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${count} webhooks (got ${hooks.filter(filter).length})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: any = null;
      try {
        body = JSON.parse(raw);
      } catch {
        body = null;
      }
      const hook: ReceivedHook = { at: Date.now(), url: req.url ?? '/', headers: req.headers, raw, body };
      const answer = receiver.respond(hook, hooks.length);
      if (answer.status >= 200 && answer.status < 300) hooks.push(hook);
      else (receiver as any).refused = ((receiver as any).refused ?? 0) + 1;
      res.writeHead(answer.status, answer.headers ?? {}).end();
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address();
  receiver.port = typeof address === 'object' && address ? address.port : 0;
  receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** Settings that make retries fast enough for tests (milliseconds instead of hours). */
export const FAST_ASYNC: Record<string, string> = {
  FERRY_EGRESS_ALLOW: '127.0.0.1/32,::1/128,localhost',
  FERRY_RETRY_SCHEDULE: '0.05,0.1,0.15,0.2',
  FERRY_RETRY_JITTER: '0',
  FERRY_DELIVERY_TIMEOUT: '2000',
  FERRY_LEASE: '1000',
  FERRY_ORIGIN_CONCURRENCY: '4',
};

/** A multipart body with one part named `file`. */
export function multipartFile(content: Buffer | string, filename = 'file.bin', field = 'file'): FormData {
  const form = new FormData();
  form.append(field, new Blob([typeof content === "string" ? content : new Uint8Array(content)]), filename);
  return form;
}
