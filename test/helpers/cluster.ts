/**
 * A Ferry cluster of real processes for tests and the cluster benchmark: N `ferry serve --role …`
 * children sharing one fresh PostgreSQL schema, one master key (nodes decrypt each other's
 * instance secrets), one FERRY_LOCALFS_BASE (any node can run any localfs job), each with its
 * own port and data dir. The first node starts alone (it migrates and bootstraps the shared
 * organization); later nodes find both done. Build first: the children run dist/src/cli.js.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { CLI, cliMissing, freePort, stopControls } from './process.js';
import { freshSchema, pgSkipReason, pgTestUrl, type TestSchema } from './postgres.js';
import { ORG_SECRET, USER_SECRET } from './server.js';

export type NodeRole = 'all' | 'api' | 'worker';

export interface ClusterNode {
  /** 1-based, in start order. */
  index: number;
  role: NodeRole;
  /** http://127.0.0.1:PORT/elements/api-v2, or null for a worker (no HTTP listener). */
  base: string | null;
  child: ChildProcess;
  stderr(): string;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful: running jobs finish), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface Cluster {
  url: string;
  schema: string;
  localfsBase: string;
  nodes: ClusterNode[];
  /** Starts one more node on the same schema (joins a running cluster). */
  addNode(role?: NodeRole, env?: Record<string, string>): Promise<ClusterNode>;
  /** Runs SQL with the cluster's schema first on the search path. */
  query(text: string, values?: unknown[]): Promise<any[]>;
  /** Kills every node still running, drops the schema, removes the temp dirs. Never throws. */
  close(): Promise<void>;
}

/** Why cluster tests cannot run here (one line), or null when they can. */
export async function clusterSkipReason(): Promise<string | null> {
  const missing = cliMissing();
  if (missing) return missing;
  return (await pgTestUrl()) ? null : pgSkipReason();
}

/** Settings every node gets: fast leases and retries, loopback callbacks allowed, quiet. */
export const CLUSTER_ENV: Record<string, string> = {
  FERRY_EGRESS_ALLOW: '127.0.0.1/32',
  FERRY_LEASE: '2000',
  FERRY_RETRY_SCHEDULE: '0.05,0.1,0.2,0.4,0.8',
  FERRY_RETRY_JITTER: '0',
  FERRY_DELIVERY_TIMEOUT: '2000',
  FERRY_LOG_LEVEL: 'silent',
  FERRY_RATE_LIMIT: '0',
};

/**
 * Starts `roles.length` nodes (the first alone, the rest together) on a fresh schema. `env` is
 * added to every node's environment. Rejects, having cleaned up, when a node fails to start.
 */
export async function startCluster(roles: NodeRole[], env: Record<string, string> = {}): Promise<Cluster> {
  const url = await pgTestUrl();
  if (!url) throw new Error(pgSkipReason());
  const schema: TestSchema = freshSchema(url);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cluster-'));
  const localfsBase = path.join(root, 'files');
  fs.mkdirSync(localfsBase);
  const shared: Record<string, string> = {
    ...CLUSTER_ENV,
    FERRY_DATABASE_URL: url,
    FERRY_DATABASE_SCHEMA: schema.schema,
    FERRY_USER_SECRET: USER_SECRET,
    FERRY_ORG_SECRET: ORG_SECRET,
    FERRY_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
    FERRY_LOCALFS_BASE: localfsBase,
    // Any node may run an upload another accepted: the spool is shared like the localfs base.
    FERRY_SPOOL_DIR: path.join(path.dirname(localfsBase), 'spool'),
    ...env,
  };
  const nodes: ClusterNode[] = [];
  const pool = new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${schema.schema}` });
  pool.on('error', () => {});

  async function addNode(role: NodeRole = 'all', extra: Record<string, string> = {}): Promise<ClusterNode> {
    const index = nodes.length + 1;
    const dataDir = path.join(root, `node${index}`);
    const port = role === 'worker' ? 0 : await freePort();
    const child = spawn(process.execPath, [CLI, 'serve', '--role', role], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: String(port), FERRY_DATA_DIR: dataDir, ...shared, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => (stderr = (stderr + c).slice(-8000)));
    const node: ClusterNode = {
      index,
      role,
      base: role === 'worker' ? null : `http://127.0.0.1:${port}/elements/api-v2`,
      child,
      stderr: () => stderr,
      ...stopControls(child),
    };
    nodes.push(node);
    // The CLI prints "… node serving …" once the listener (if any), runner and sender run.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${index} (${role}) did not start in time: ${stderr}`)), 20_000);
      child.stdout!.on('data', (c: string) => {
        stdout += c;
        if (/node serving/.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`node ${index} (${role}) exited (${code ?? signal}) before serving: ${stderr}`));
      });
    });
    child.stdout!.resume();
    return node;
  }

  let closed = false;
  const cluster: Cluster = {
    url,
    schema: schema.schema,
    localfsBase,
    nodes,
    addNode,
    async query(text, values = []) {
      return (await pool.query(text, values)).rows;
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(nodes.map((n) => n.kill().catch(() => {})));
      await pool.end().catch(() => {});
      await schema.drop().catch(() => {});
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    if (roles.length) await addNode(roles[0]);
    await Promise.all(roles.slice(1).map((role) => addNode(role)));
  } catch (e) {
    await cluster.close();
    throw e;
  }
  return cluster;
}

/**
 * Test instrumentation (not part of Ferry): a trigger that records every claim of a job — each
 * time its `attempts` grows — with the claimer and how many unexpired leases its instance held
 * right after the claiming statement (this claim included). Installed after the first node
 * migrated. `test_claims` rows: {event_id, instance_id, owner, running, lease_ms (the claimer's
 * FERRY_LEASE: a node given a distinct one is recognisable), at_ms}.
 */
export async function installClaimAudit(cluster: Cluster): Promise<void> {
  const s = cluster.schema;
  await cluster.query(`
    CREATE TABLE ${s}.test_claims (event_id bigint, instance_id int, owner text, running int, lease_ms bigint, at_ms bigint);
    CREATE FUNCTION ${s}.test_audit_claim() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE now_ms bigint := floor(extract(epoch from statement_timestamp()) * 1000)::bigint;
    BEGIN
      INSERT INTO ${s}.test_claims VALUES (NEW.event_id, NEW.instance_id, NEW.lease_owner,
        (SELECT count(*) FROM ${s}.jobs WHERE instance_id = NEW.instance_id AND lease_until > now_ms),
        NEW.lease_until - now_ms,
        floor(extract(epoch from clock_timestamp()) * 1000)::bigint);
      RETURN NULL;
    END $$;
    CREATE TRIGGER test_audit_claim AFTER UPDATE OF attempts ON ${s}.jobs
      FOR EACH ROW WHEN (NEW.attempts <> OLD.attempts) EXECUTE FUNCTION ${s}.test_audit_claim();
    -- A job handed off to the accepting node's runner is inserted already leased: a claim too.
    CREATE TRIGGER test_audit_handoff AFTER INSERT ON ${s}.jobs
      FOR EACH ROW WHEN (NEW.attempts > 0) EXECUTE FUNCTION ${s}.test_audit_claim();
  `);
}

/** One TCP socket from /proc/net/tcp: ports and the bytes queued each way. */
interface TcpSocket {
  localPort: number;
  remotePort: number;
  txQueue: number;
  rxQueue: number;
  inode: string;
}

function tcpSockets(): TcpSocket[] {
  const lines = ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').slice(1) : []));
  return lines.map((line) => {
    const f = line.trim().split(/\s+/);
    const [tx, rx] = f[4].split(':');
    return {
      localPort: parseInt(f[1].split(':')[1], 16),
      remotePort: parseInt(f[2].split(':')[1], 16),
      txQueue: parseInt(tx, 16),
      rxQueue: parseInt(rx, 16),
      inode: f[9],
    };
  });
}

/**
 * What PostgreSQL still has to do for process `pid` (Linux /proc): the bytes its connections
 * sent that the server has not read yet, and how many of its backends are running a statement. With the process stopped (SIGSTOP), `unread === 0 && active === 0` means
 * the database has done everything the process asked: what is committed now stays as it is,
 * and an open transaction rolls back when the process dies.
 */
export async function pendingFor(cluster: Cluster, pid: number): Promise<{ unread: number; active: number }> {
  const pgPort = Number(new URL(cluster.url).port || 5432);
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let link = '';
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]);
  }
  const sockets = tcpSockets();
  const mine = sockets.filter((s) => inodes.has(s.inode) && s.remotePort === pgPort);
  const ports = mine.map((s) => s.localPort);
  const serverSide = sockets.filter((s) => s.localPort === pgPort && ports.includes(s.remotePort));
  const unread = mine.reduce((n, s) => n + s.txQueue, 0) + serverSide.reduce((n, s) => n + s.rxQueue, 0);
  const [{ active }] = await cluster.query(
    `SELECT count(*)::int AS active FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND state = 'active'`,
    [ports],
  );
  return { unread, active };
}
