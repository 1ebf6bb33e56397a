/**
 * Ferry as a child process (`node dist/src/cli.js serve`), for tests that must kill the server
 * the hard way: SIGKILL gives it no chance to finish anything, so whatever survives is what the
 * store made durable. The process runs from the compiled tree next to this file, so build first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { pgUrl } from './postgres.js';
import { dropSchema, schemaFor, testBackend } from './server.js';

/** The compiled CLI beside this compiled helper (dist/test/helpers → dist/src/cli.js). */
export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** Why process tests cannot run here, or null when they can. */
export function cliMissing(): string | null {
  return fs.existsSync(CLI) ? null : `${CLI} is missing; build first (npx tsc -p tsconfig.json)`;
}

/** A TCP port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface FerryProcessOptions {
  dataDir: string;
  port: number;
  /** Added to (and overriding) the defaults below. */
  env?: Record<string, string>;
  /** Extra node flags (e.g. `--cpu-prof`), placed before the script. */
  execArgv?: string[];
  /** How long to wait for the server to answer HTTP; default 20 s. */
  readyTimeoutMs?: number;
  /** Receives what the process writes to stdout (its log lines); stdout is ignored without it. */
  onStdout?: (chunk: string) => void;
}

export interface FerryProcess {
  child: ChildProcess;
  /** http://127.0.0.1:PORT/elements/api-v2 */
  base: string;
  /** What the process wrote to stderr (for failure messages). */
  stderr(): string;
  /** SIGKILL, resolving once the process is gone (its port is free again). */
  kill(): Promise<void>;
  /** SIGTERM (graceful), falling back to SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** `kill` (SIGKILL) and `stop` (SIGTERM, then SIGKILL after `graceMs`) for a spawned node. */
export function stopControls(child: ChildProcess): Pick<FerryProcess, 'kill' | 'stop'> {
  return {
    async kill() {
      const gone = exited(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await gone;
    },
    async stop(graceMs = 5000) {
      const gone = exited(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/**
 * The store settings of a child on `dataDir`: none for SQLite (the data dir holds it); with
 * FERRY_TEST_BACKEND=postgres the test database, in a schema named after the data dir, so a
 * restart on the same dir finds the same data (see `dropProcessSchema`).
 */
export function processBackendEnv(dataDir: string): Record<string, string> {
  return testBackend() === 'postgres' ? { FERRY_DATABASE_URL: pgUrl(), FERRY_DATABASE_SCHEMA: schemaFor(dataDir) } : {};
}

/** Drops the PostgreSQL schema of children on `dataDir`, if they used one. Never throws. */
export async function dropProcessSchema(dataDir: string): Promise<void> {
  if (testBackend() === 'postgres') await dropSchema(schemaFor(dataDir)).catch(() => undefined);
}

/**
 * Starts `ferry serve` on `dataDir` and `port` and resolves once it answers HTTP. With
 * FERRY_TEST_BACKEND=postgres the child stores in PostgreSQL (`processBackendEnv`). Rejects (with
 * its stderr) if it exits first or does not answer within the timeout, killing it in that case.
 */
export async function startFerryProcess(options: FerryProcessOptions): Promise<FerryProcess> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    HOST: '127.0.0.1',
    PORT: String(options.port),
    FERRY_DATA_DIR: options.dataDir,
    FERRY_LOG_LEVEL: 'silent',
    FERRY_RATE_LIMIT: '0',
    FERRY_AUTH_FAILURE_LIMIT: '0',
    ...processBackendEnv(options.dataDir),
    ...options.env,
  };
  const child = spawn(process.execPath, [...(options.execArgv ?? []), CLI, 'serve'], {
    env,
    stdio: ['ignore', options.onStdout ? 'pipe' : 'ignore', 'pipe'],
  });
  if (options.onStdout) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', options.onStdout);
  }
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  const base = `http://127.0.0.1:${options.port}/elements/api-v2`;
  const proc: FerryProcess = {
    child,
    base,
    stderr: () => stderr,
    ...stopControls(child),
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`ferry serve exited (${child.exitCode ?? child.signalCode}) before answering: ${stderr}`);
    }
    try {
      const res = await fetch(`${base}/elements`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return proc; // any HTTP answer (401 without credentials) means it is serving
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.kill();
      throw new Error(`ferry serve did not answer on port ${options.port} in time: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
