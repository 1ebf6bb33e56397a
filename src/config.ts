/**
 * Ferry's one typed configuration object, parsed and validated at start from the environment.
 * Every setting, its default and its meaning live in `SETTINGS` below; the README's
 * configuration table is checked against it by test/config.test.ts.
 */
import path from 'node:path';

export type Durability = 'normal' | 'fsync';
export type Role = 'all' | 'api' | 'worker';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | null;
  databaseSchema: string | null;
  durability: Durability;
  localfsBase: string;
  masterKey: string | null;
  userSecret: string | null;
  orgSecret: string | null;
  publicUrl: string | null;
  egressAllow: string[];
  asyncMaxBody: number;
  /** Where async upload bodies wait for their jobs (async/spool.ts). */
  spoolDir: string;
  resultRetentionMs: number;
  /** Where bulk jobs keep their sealed results and errors (issue 17, src/bulk/). */
  bulkDir: string;
  /** Largest bulk manifest: rows and bytes (issue 17). */
  bulkMaxRows: number;
  bulkMaxBytes: number;
  maxBody: number;
  maxPathLength: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  bodyTimeoutMs: number;
  backendTimeoutMs: number;
  linkTtlSeconds: number;
  jobConcurrency: number;
  instanceConcurrency: number;
  leaseMs: number;
  deliveryTimeoutMs: number;
  deliveryRetrySchedule: number[];
  deliveryJitter: number;
  deliveryConcurrency: number;
  originConcurrency: number;
  rateLimitPerMinute: number;
  /** Failed authentications per minute one client address may make before 429 (0 = off). */
  authFailureLimitPerMinute: number;
  logLevel: string;
  role: Role;
  /** Role `all` on SQLite: run jobs and deliveries on a worker thread beside the API. */
  runnerThread: boolean;
  /** The runner thread's nice value (0–19; Linux): accepting goes first when both need the CPU. */
  runnerNice: number;
  /** The runner thread pauses while the API is saturated (async/busy-api.ts). */
  runnerYield: boolean;
  /** How long a replaced signature key is still sent beside the new one (key rotation). */
  keyRotationOverlapMs: number;
  /** Milliseconds between the runner's and sender's claims when nothing woke them (a fallback). */
  pollMs: number;
  /** SQLite: at most one WAL checkpoint per this many milliseconds, and none without commits. */
  checkpointMs: number;
  /** Serve Prometheus metrics on GET /metrics (observability/metrics.ts). */
  metrics: boolean;
  /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
  metricsToken: string | null;
  /** Milliseconds a draining node (SIGTERM, SIGINT) gives running jobs and requests to finish. */
  drainTimeoutMs: number;
  /** Shortest change-poll interval, in milliseconds (FERRY_POLLER_MIN_INTERVAL is in seconds). */
  pollerMinIntervalMs: number;
  /** Instances one node rescans at once. */
  pollerConcurrency: number;
  /** How long a node keeps an instance's polls after its last poll is due (takeover delay). */
  pollerLeaseMs: number;
  /** Run the change poller on a worker thread of its own (changes/poller-thread.ts). */
  pollerThread: boolean;
  /** The poller thread's nice value (0–19; Linux). */
  pollerNice: number;
}

interface Setting {
  env: string;
  default: string;
  description: string;
}

/** Every environment variable Ferry reads, with its default, in one place. */
export const SETTINGS: Setting[] = [
  { env: 'PORT', default: '8080', description: 'HTTP port to listen on.' },
  { env: 'HOST', default: '127.0.0.1', description: 'Address to listen on (`0.0.0.0` for all interfaces).' },
  { env: 'FERRY_DATA_DIR', default: './data', description: 'Where the SQLite database, the master key and credentials.json live.' },
  { env: 'FERRY_DATABASE_URL', default: '', description: 'A `postgres://` URL selects the PostgreSQL store (several nodes); empty = SQLite under the data dir.' },
  { env: 'FERRY_DATABASE_SCHEMA', default: '', description: 'PostgreSQL schema holding Ferry\'s tables (created if missing); empty = the connection\'s default (`public`). Nodes of one cluster use the same.' },
  { env: 'FERRY_DURABILITY', default: 'normal', description: '`fsync` makes every (batched) commit fsync: power-loss safe. `normal` survives a process crash.' },
  { env: 'FERRY_LOCALFS_BASE', default: '<dataDir>/files', description: 'Folder under which every `localfs` instance root must lie.' },
  { env: 'FERRY_MASTER_KEY', default: '(generated)', description: 'Base64 of 32 bytes encrypting backend credentials and signature keys at rest; generated into `<dataDir>/master.key` when absent.' },
  { env: 'FERRY_USER_SECRET', default: '(random)', description: 'Preset user secret of the bootstrap user (first start with an empty store).' },
  { env: 'FERRY_ORG_SECRET', default: '(random)', description: 'Preset organization secret of the bootstrap organization.' },
  { env: 'FERRY_PUBLIC_URL', default: 'http://HOST:PORT', description: 'Base URL used in signed links and `resultUrl`s.' },
  { env: 'FERRY_EGRESS_ALLOW', default: '', description: 'Comma-separated CIDRs and host names that outbound calls may reach even though private/loopback (e.g. `127.0.0.1/32,::1/128,localhost`).' },
  { env: 'FERRY_ASYNC_MAX_BODY', default: '5368709120', description: 'Largest request body (bytes) an asynchronous request may carry; over it → 413. Upload bodies are streamed to the spool (FERRY_SPOOL_DIR), other bodies are also bound by FERRY_MAX_BODY.' },
  { env: 'FERRY_SPOOL_DIR', default: '<dataDir>/spool', description: 'Where the bodies of asynchronous uploads wait (fsynced) for their jobs; deleted when the job ends. Nodes of a cluster must share it.' },
  { env: 'FERRY_RESULT_RETENTION', default: '259200', description: 'Seconds a download produced by an async job is kept for its `resultUrl`.' },
  { env: 'FERRY_BULK_DIR', default: '<dataDir>/bulk', description: 'Where bulk jobs keep their results and errors, encrypted with the master key, for FERRY_RESULT_RETENTION seconds after they finish. Nodes of a cluster must share it.' },
  { env: 'FERRY_BULK_MAX_ROWS', default: '1000000', description: 'Most rows a bulk manifest (`POST /bulk/files`) may hold; over it → 400, nothing run.' },
  { env: 'FERRY_BULK_MAX_BYTES', default: '268435456', description: 'Largest bulk manifest in bytes; over it → 400, nothing run.' },
  { env: 'FERRY_MAX_BODY', default: '1048576', description: 'Largest JSON body (bytes) of a synchronous request.' },
  { env: 'FERRY_MAX_PATH', default: '4096', description: 'Longest document path (characters); single names are limited to 255 bytes.' },
  { env: 'FERRY_HEADERS_TIMEOUT', default: '10000', description: 'Milliseconds a client may take to send its request headers; slower connections are closed.' },
  { env: 'FERRY_IDLE_TIMEOUT', default: '60000', description: 'Milliseconds a connection may stay silent while a request is received or a response sent; a request still being handled is not cut.' },
  { env: 'FERRY_BODY_TIMEOUT', default: '30000', description: 'Milliseconds a non-upload (JSON) request body may take to arrive; multipart uploads are bound only by FERRY_IDLE_TIMEOUT.' },
  { env: 'FERRY_BACKEND_TIMEOUT', default: '30000', description: 'Milliseconds one backend operation (S3, SFTP) may take before 504.' },
  { env: 'FERRY_LINK_TTL', default: '3600', description: 'Seconds a signed download link stays valid.' },
  { env: 'FERRY_JOB_CONCURRENCY', default: '32', description: 'Async jobs one node runs at once.' },
  { env: 'FERRY_INSTANCE_CONCURRENCY', default: '8', description: 'Async jobs of one instance run at once.' },
  { env: 'FERRY_LEASE', default: '30000', description: 'Milliseconds a claimed job is leased; renewed by heartbeat while it runs, taken over when it expires.' },
  { env: 'FERRY_DELIVERY_TIMEOUT', default: '15000', description: 'Milliseconds one webhook attempt may take.' },
  { env: 'FERRY_RETRY_SCHEDULE', default: '4,16,64,256,1024,4096,16384,65536,262144', description: 'Seconds after the first failure of each retry (comma-separated; fractions allowed).' },
  { env: 'FERRY_RETRY_JITTER', default: '0.2', description: 'Random spread of each retry delay (0.2 = ±20 %).' },
  { env: 'FERRY_DELIVERY_CONCURRENCY', default: '64', description: 'Webhook attempts one node makes at once.' },
  { env: 'FERRY_ORIGIN_CONCURRENCY', default: '16', description: 'Webhook attempts in flight to one callback origin at once.' },
  { env: 'FERRY_RATE_LIMIT', default: '0', description: 'Requests per minute one organization may make (0 = unlimited, the default: opt in for a shared gateway); over it → 429 with Retry-After. Counted per node.' },
  { env: 'FERRY_AUTH_FAILURE_LIMIT', default: '20', description: 'Failed authentications (401) per minute one client address may make; after them every request from that address needing a secret gets 429 with Retry-After until the minute refills (0 = off). Counted per node; behind a reverse proxy all clients share its address.' },
  { env: 'FERRY_LOG_LEVEL', default: 'info', description: 'pino log level (`silent` to turn logging off).' },
  { env: 'FERRY_ROLE', default: 'all', description: '`all` (API + runner + sender), `api` or `worker`; `ferry serve --role` overrides.' },
  { env: 'FERRY_RUNNER_THREAD', default: 'on', description: '`on`: a node that runs jobs runs its runner and sender (claims, replays, completion, webhooks) on a worker thread, so answering requests and running jobs use two cores; `off` runs everything on one thread.' },
  { env: 'FERRY_RUNNER_NICE', default: '10', description: 'The runner thread\'s nice value, 0–19 (Linux; elsewhere ignored). Above 0, answering API requests goes first when the API and the jobs compete for the CPU: a burst is accepted at full speed and its jobs run as the CPU frees. 0 gives both the same priority.' },
  { env: 'FERRY_KEY_ROTATION_OVERLAP', default: '86400', description: 'Seconds a replaced `event.notification.signature.key` keeps being sent: every webhook\'s `webhook-signature` carries the new and the previous key\'s `v1,` signatures (new first) until then, so receivers can switch keys without a gap. 0 switches at once.' },
  { env: 'FERRY_POLL_INTERVAL', default: '2000', description: 'Milliseconds after which an idle runner and sender look in the store anyway. Only a fallback: accepts, completions and redeliveries wake them at once (on PostgreSQL also other nodes\' NOTIFYs), and the sender sleeps exactly until its next retry is due; the poll catches what no wake-up announces — a lost NOTIFY, a lease that expired on a dead node. Lower means faster takeover of such work and more idle queries (each poll is one claim of jobs and one of notifications).' },
  { env: 'FERRY_CHECKPOINT_INTERVAL', default: '250', description: 'SQLite: milliseconds between two WAL checkpoints on the checkpointer thread. It runs only after commits (an idle node never wakes for it): at most one checkpoint per interval, starting one interval after the first commit since the last. Longer means fewer checkpoints (each fsyncs the database file) and a larger WAL between them.' },
  { env: 'FERRY_RUNNER_YIELD', default: 'on', description: '`on`: while the API is saturated (its thread at least half busy with 16 or more requests in flight on average over 200 ms), the runner thread starts no claims, for up to 1 s at a time and with at least 250 ms of running between two pauses; jobs already running and their webhooks go on. A burst is so accepted at full speed and its jobs run after it. `off`: the thread runs whatever the load.' },
  { env: 'FERRY_METRICS', default: 'on', description: '`on`: `GET /metrics` serves Prometheus metrics on the main port (see Operating Ferry); `off`: no route, nothing counted.' },
  { env: 'FERRY_METRICS_TOKEN', default: '', description: 'When set, `GET /metrics` requires `Authorization: Bearer <token>` (401 otherwise); empty = no authentication.' },
  { env: 'FERRY_DRAIN_TIMEOUT', default: '30', description: 'Seconds a node stopping on SIGTERM or SIGINT gives running jobs (and their webhooks) and requests in flight to finish; what is left is released in the store for another node (or the next start) to take at once. A second signal exits at once.' },
  { env: 'FERRY_POLLER_MIN_INTERVAL', default: '5', description: 'Shortest interval (seconds) between two change polls of one instance; a smaller `event.poller.refresh_interval` is raised to it.' },
  { env: 'FERRY_POLLER_CONCURRENCY', default: '2', description: 'Instances one node rescans for changes at once (each rescan reads its tree in bounded slices).' },
  { env: 'FERRY_POLLER_THREAD', default: 'on', description: '`on`: a node that runs jobs runs its change poller on a worker thread of its own, at FERRY_POLLER_NICE, so rescans use what the API and the async jobs leave of the CPU; `off` runs it beside the runner and sender (it then gives way to running jobs between slices).' },
  { env: 'FERRY_POLLER_NICE', default: '19', description: 'The poller thread\'s nice value, 0–19 (Linux; elsewhere ignored).' },
  { env: 'FERRY_POLLER_LEASE', default: '30000', description: 'Milliseconds a node keeps an instance\'s change polls past their due time; when the node dies another takes the instance over after it.' },
];

const DEFAULTS = Object.fromEntries(SETTINGS.map((s) => [s.env, s.default]));

function int(env: NodeJS.ProcessEnv, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name] ?? DEFAULTS[name];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new Error(`${name} must be an integer ${range}, got "${raw}"`);
  }
  return n;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[]): T {
  const raw = (env[name] ?? DEFAULTS[name]) as T;
  if (!values.includes(raw)) throw new Error(`${name} must be one of ${values.join(', ')}, got "${raw}"`);
  return raw;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Reads and validates the configuration; throws an Error naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const dataDir = path.resolve(env.FERRY_DATA_DIR || DEFAULTS.FERRY_DATA_DIR);
  const port = int(env, 'PORT');
  const host = env.HOST || DEFAULTS.HOST;
  const schedule = list(env.FERRY_RETRY_SCHEDULE ?? DEFAULTS.FERRY_RETRY_SCHEDULE).map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) throw new Error(`FERRY_RETRY_SCHEDULE must be non-negative numbers, got "${s}"`);
    return Math.round(n * 1000);
  });
  const jitter = Number(env.FERRY_RETRY_JITTER ?? DEFAULTS.FERRY_RETRY_JITTER);
  if (!(jitter >= 0 && jitter < 1)) throw new Error('FERRY_RETRY_JITTER must be in [0, 1)');
  const databaseUrl = env.FERRY_DATABASE_URL || null;
  if (env.FERRY_DATABASE_SCHEMA && !/^[a-z_][a-z0-9_]{0,62}$/.test(env.FERRY_DATABASE_SCHEMA)) {
    throw new Error('FERRY_DATABASE_SCHEMA must be a lower-case identifier (letters, digits, _)');
  }
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new Error('FERRY_DATABASE_URL must start with postgres:// or postgresql://');
  }
  const config: Config = {
    port,
    host,
    dataDir,
    databaseUrl,
    databaseSchema: env.FERRY_DATABASE_SCHEMA || null,
    durability: oneOf(env, 'FERRY_DURABILITY', ['normal', 'fsync'] as const),
    localfsBase: path.resolve(env.FERRY_LOCALFS_BASE || path.join(dataDir, 'files')),
    masterKey: env.FERRY_MASTER_KEY || null,
    userSecret: env.FERRY_USER_SECRET || null,
    orgSecret: env.FERRY_ORG_SECRET || null,
    publicUrl: env.FERRY_PUBLIC_URL || null,
    egressAllow: list(env.FERRY_EGRESS_ALLOW),
    asyncMaxBody: int(env, 'FERRY_ASYNC_MAX_BODY', 1),
    spoolDir: path.resolve(env.FERRY_SPOOL_DIR || path.join(dataDir, 'spool')),
    resultRetentionMs: int(env, 'FERRY_RESULT_RETENTION', 1) * 1000,
    bulkDir: path.resolve(env.FERRY_BULK_DIR || path.join(dataDir, 'bulk')),
    bulkMaxRows: int(env, 'FERRY_BULK_MAX_ROWS', 1),
    bulkMaxBytes: int(env, 'FERRY_BULK_MAX_BYTES', 1),
    maxBody: int(env, 'FERRY_MAX_BODY', 1024),
    maxPathLength: int(env, 'FERRY_MAX_PATH', 16),
    headersTimeoutMs: int(env, 'FERRY_HEADERS_TIMEOUT', 100),
    idleTimeoutMs: int(env, 'FERRY_IDLE_TIMEOUT', 100),
    bodyTimeoutMs: int(env, 'FERRY_BODY_TIMEOUT', 100),
    backendTimeoutMs: int(env, 'FERRY_BACKEND_TIMEOUT', 1),
    linkTtlSeconds: int(env, 'FERRY_LINK_TTL', 1),
    jobConcurrency: int(env, 'FERRY_JOB_CONCURRENCY', 1),
    instanceConcurrency: int(env, 'FERRY_INSTANCE_CONCURRENCY', 1),
    leaseMs: int(env, 'FERRY_LEASE', 100),
    deliveryTimeoutMs: int(env, 'FERRY_DELIVERY_TIMEOUT', 1),
    deliveryRetrySchedule: schedule,
    deliveryJitter: jitter,
    deliveryConcurrency: int(env, 'FERRY_DELIVERY_CONCURRENCY', 1),
    originConcurrency: int(env, 'FERRY_ORIGIN_CONCURRENCY', 1),
    rateLimitPerMinute: int(env, 'FERRY_RATE_LIMIT', 0),
    authFailureLimitPerMinute: int(env, 'FERRY_AUTH_FAILURE_LIMIT', 0),
    logLevel: env.FERRY_LOG_LEVEL || DEFAULTS.FERRY_LOG_LEVEL,
    role: oneOf(env, 'FERRY_ROLE', ['all', 'api', 'worker'] as const),
    runnerThread: oneOf(env, 'FERRY_RUNNER_THREAD', ['on', 'off'] as const) === 'on',
    runnerNice: int(env, 'FERRY_RUNNER_NICE', 0, 19),
    runnerYield: oneOf(env, 'FERRY_RUNNER_YIELD', ['on', 'off'] as const) === 'on',
    keyRotationOverlapMs: int(env, 'FERRY_KEY_ROTATION_OVERLAP', 0) * 1000,
    pollMs: int(env, 'FERRY_POLL_INTERVAL', 50, 3_600_000),
    checkpointMs: int(env, 'FERRY_CHECKPOINT_INTERVAL', 10, 3_600_000),
    metrics: oneOf(env, 'FERRY_METRICS', ['on', 'off'] as const) === 'on',
    metricsToken: env.FERRY_METRICS_TOKEN || null,
    drainTimeoutMs: int(env, 'FERRY_DRAIN_TIMEOUT', 0, 86_400) * 1000,
    pollerMinIntervalMs: int(env, 'FERRY_POLLER_MIN_INTERVAL', 1) * 1000,
    pollerConcurrency: int(env, 'FERRY_POLLER_CONCURRENCY', 1),
    pollerLeaseMs: int(env, 'FERRY_POLLER_LEASE', 100),
    pollerThread: oneOf(env, 'FERRY_POLLER_THREAD', ['on', 'off'] as const) === 'on',
    pollerNice: int(env, 'FERRY_POLLER_NICE', 0, 19),
    ...overrides,
  };
  return config;
}

/** The base URL Ferry is reachable at, for links it hands out. */
export function publicUrl(config: Config): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}
