/**
 * Starts a Ferry node: configuration → store (migrations) → master key → bootstrap → HTTP API,
 * and, by role, the runner and the sender. With FERRY_RUNNER_THREAD those two run on a runner
 * thread, which is this same function with `thread`: a node without API.
 * `close()` stops them in the reverse order, letting running jobs finish.
 */
import fs from 'node:fs';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { openStore } from './store/index.js';
import type { Instance, Store } from './store/store.js';
import type { SqliteStore } from './store/sqlite/index.js';
import { MasterKey } from './identity/crypto.js';
import { bootstrap } from './identity/bootstrap.js';
import { InstanceService } from './instances/service.js';
import { Authenticator } from './http/auth.js';
import { buildApp, type Services } from './http/app.js';
import { LinkSigner } from './documents/links.js';
import { RateLimiter } from './http/ratelimit.js';
import { AuthFailureLimiter } from './http/auth-failures.js';
import { AsyncIntake } from './async/accept.js';
import { Runner } from './async/runner.js';
import { Sender } from './async/sender.js';
import { createEgressPolicy } from './async/egress.js';
import { RunnerThread } from './async/runner-thread.js';
import { LocalExecutor } from './async/executor.js';
import { metrics } from './observability/metrics.js';
import { CHECK_TIMEOUT_MS } from './observability/readiness.js';
import { drainHttp, drainWork, type DrainReport } from './lifecycle/drain.js';
import { startOperationsServer } from './observability/operations-server.js';
import { Poller } from './changes/poller.js';
import { PollerThread } from './changes/poller-thread.js';
import { ChangeSchedules } from './changes/schedules.js';
import { Spool } from './async/spool.js';
import { SyncTempRegistry, syncTempsDir, sweepLeftovers } from './documents/sync-temps.js';
import { syncJob } from './documents/job.js';

export interface Ferry {
  app: FastifyInstance;
  store: Store;
  config: Config;
  /** Base URL the API listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  /** A worker node's listener for /healthz, /readyz and /metrics (it serves no API). */
  operationsUrl?: string;
  /** The runner and sender running on this thread, if any. */
  worker?: { runner: Runner; sender: Sender };
  /** The change poller running on this thread (beside the runner and sender), if any. */
  poller?: Poller;
  /** The node's runner thread, if it has one. */
  runnerThread?: RunnerThread;
  /**
   * Graceful drain (lifecycle/drain.ts): unready at once, no new connections, requests and jobs
   * in flight finish until `deadline` (default: now + FERRY_DRAIN_TIMEOUT), the rest is released
   * in the store. `close()` follows.
   */
  drain(deadline?: number): Promise<DrainReport>;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  print?: (line: string) => void;
  /**
   * This is a node's runner thread (see async/runner-thread.ts): its runner and sender, no API;
   * it shares the node's SQLite write lock.
   */
  thread?: { writeLock?: Int32Array };
}

/** Secret-bearing fields pino must never print. */
const REDACT = ['req.headers.authorization', 'headers.authorization', 'authorization', '*.password', '*.secret_key'];

/** Ferry's logger; `destination` defaults to stdout (tests pass a memory stream to read it). */
export function createLogger(config: Config, destination?: pino.DestinationStream): Logger {
  const options = { level: config.logLevel, redact: { paths: REDACT, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

export async function startFerry(config: Config, options: StartOptions = {}): Promise<Ferry> {
  const log = options.logger ?? createLogger(config);
  const print = options.print ?? ((line: string) => process.stdout.write(line + '\n'));
  if (config.metrics) metrics.enable({ process: !options.thread });
  fs.mkdirSync(config.dataDir, { recursive: true });
  fs.mkdirSync(config.localfsBase, { recursive: true });
  const store = await openStore(config, { writeLock: options.thread?.writeLock });
  const masterKey = MasterKey.load(config.masterKey, config.dataDir);
  if (!options.thread) {
    await bootstrap(store, config, print);
    if (!store.capabilities.shared) await store.releaseAllLeases();
  }

  const egress = createEgressPolicy(config.egressAllow);
  const instances = new InstanceService(store, masterKey, config, egress);
  const auth = new Authenticator(store);
  instances.onChange = () => auth.forgetInstances();
  instances.onWarning = (details, message) => log.warn(details, message);
  const services: Services = {
    config,
    store,
    instances,
    auth,
    links: new LinkSigner(masterKey),
    jobChanges: new Map(),
    jobContexts: new Map(),
    rateLimiter: config.rateLimitPerMinute > 0 ? new RateLimiter(config.rateLimitPerMinute) : undefined,
    authFailures: config.authFailureLimitPerMinute > 0 ? new AuthFailureLimiter(config.authFailureLimitPerMinute) : undefined,
  };
  // A runner thread (options.thread) runs its node's runner and sender, and no API.
  const runsApi = config.role !== 'worker' && !options.thread;
  const runsWorker = config.role !== 'api';
  // On PostgreSQL too (issue 19): the thread is a node of its own on the shared store, with its
  // own pool and LISTEN connection; it took the async accept from 27–30 % to 42–47 % of a sync
  // ping (session 3 had measured a thread that only moved replays over as slower).
  const threaded = runsWorker && !options.thread && config.runnerThread;

  let runner: Runner | null = null;
  let sender: Sender | null = null;
  let thread: RunnerThread | null = null;
  let poller: Poller | null = null;
  let pollerThread: PollerThread | null = null;
  // Change polling (src/changes/): schedules follow instances; the poller runs on a thread of its
  // own (FERRY_POLLER_THREAD), or else beside the runner and sender.
  const wakePoller = () => (pollerThread ? pollerThread.wake() : thread ? thread.wake('changes') : poller?.wake());
  const schedules = new ChangeSchedules(store, instances, config, wakePoller);
  if (!options.thread) instances.onStored = (instance, id) => schedules.sync(instance, id);
  const spool = new Spool(config.spoolDir);
  if (!options.thread) {
    // Spool files no job refers to: from a crash before their event committed or after their
    // job completed. A node sharing the folder (PostgreSQL) may be spooling right now: only
    // files older than an hour are another's orphans there.
    await spool.sweep(await store.spooledJobFiles(), store.capabilities.shared ? 3600_000 : 0);
  }
  // Synchronous writes register where they put temp files; what dead runs of this host left
  // is removed in the background, so no backend (a slow SFTP server) holds up the start.
  const syncTemps = runsApi
    ? new SyncTempRegistry(syncTempsDir(config.dataDir), (e) => log.warn({ err: e }, 'the sync temp-file registry cannot be written; temp files of a crash are removed by listings after an hour'))
    : null;
  if (syncTemps) services.syncJob = syncJob(syncTemps);
  if (!options.thread) void sweepSyncTemps(store, instances, log, config.dataDir);
  services.intake = new AsyncIntake(config, store, instances, egress, () => thread?.runner ?? runner ?? undefined, spool);
  services.wakeSender = () => (thread ? thread.wake('notifications') : sender?.wake());
  let draining = false;
  if (!options.thread) {
    services.operations = {
      draining: () => draining,
      runner: runsWorker
        ? async () => {
            // The thread reports its progress with its slot reports: a busy thread is not
            // asked (and cannot be too slow to answer); a stuck one stops reporting.
            if (thread) return thread.runner.progress;
            return runner?.progress() ?? { lastProgressAt: Date.now(), running: 0, backlog: false };
          }
        : undefined,
      // A scrape waits a little longer than a probe for the thread's counters: without them the
      // scrape fails (and Prometheus records it) rather than showing counters that went back.
      threadFamilies: async () => (thread ? [(await thread.probe(5 * CHECK_TIMEOUT_MS)).families] : []),
    };
  }
  services.cancelJob = (eventId) => (thread ? thread.cancel(eventId) : runner?.cancel(eventId));
  const app = await buildApp(services, log);
  // Webhooks leave through this node's egress dispatcher, when its runner and sender are here.
  const dispatcher = runsWorker && !threaded ? egress.dispatcher({ connectTimeoutMs: Math.min(10_000, config.deliveryTimeoutMs) }) : null;

  await app.ready();
  let url = '';
  if (runsApi) {
    url = await app.listen({ port: config.port, host: config.host });
  }
  if (threaded) {
    // Started once listening: replayed requests build links with the port actually bound.
    // Until it is ready, accepted jobs wait in the store; its runner's first claim takes them.
    const address = runsApi ? app.server.address() : null;
    const port = typeof address === 'object' && address ? address.port : config.port;
    try {
      // libuv's thread pool (async fs, dns) is created by its first user and its threads inherit
      // that thread's nice value: create it here, so the API's file work never runs niced.
      await fs.promises.access(config.dataDir);
      thread = await RunnerThread.start({ ...config, port }, (store as Partial<SqliteStore>).writeLock?.cell, log);
      if (config.runnerYield && runsApi) thread.yieldWhileBusy(app.server);
    } catch (e) {
      await app.close();
      await store.close();
      throw e;
    }
  }
  const wakeups = store as Store & { onWake?: (channel: 'jobs' | 'notifications' | 'changes' | 'cancels', fn: () => void) => () => void };
  const unsubscribe: (() => void)[] = [];
  if (dispatcher) {
    const local = new LocalExecutor(app, auth, services.jobChanges, dispatcher, store, services.jobContexts, spool);
    sender = new Sender(store, instances, config, local, log);
    runner = new Runner(local, store, config, log, sender);
    if (!config.pollerThread) poller = new Poller(store, instances, config, log, () => sender?.wake(), () => runner?.activeJobs ?? 0);
    if (wakeups.onWake) {
      unsubscribe.push(wakeups.onWake('jobs', () => runner?.wake()));
      unsubscribe.push(wakeups.onWake('notifications', () => sender?.wake()));
      unsubscribe.push(wakeups.onWake('changes', () => poller?.wake()));
      // A cancel on another node: check this node's running jobs now (issue 16).
      unsubscribe.push(wakeups.onWake('cancels', () => void runner?.checkCancels()));
    }
  }
  runner?.start();
  sender?.start();
  poller?.start();
  if (runsWorker && !options.thread && config.pollerThread) {
    const writeLock = (store as Partial<SqliteStore>).writeLock?.cell;
    pollerThread = await PollerThread.start({ config, writeLock }, log, () => (thread ? thread.wake('notifications') : sender?.wake()));
  }
  if (!options.thread) {
    try {
      await schedules.reconcile();
    } catch (e) {
      log.error({ err: e }, 'reconciling change poll schedules failed; instances changed from now on are scheduled as usual');
    }
  }
  // A worker serves no API, but answers probes and scrapes on PORT.
  const operationsApp =
    config.role === 'worker' && !options.thread && services.operations
      ? await startOperationsServer(config, store, services.operations, log).catch(async (e) => {
          await runner?.stop();
          await sender?.stop();
          await store.close();
          throw e;
        })
      : null;
  const operationsAddress = operationsApp?.server.address();
  const purge = options.thread
    ? undefined
    : setInterval(() => {
        const now = new Date();
        void store.purgeExpired(now, new Date(now.getTime() - 24 * 3600 * 1000)).catch(() => {});
      }, 60_000);
  purge?.unref();

  let closed = false;
  let drained: Promise<DrainReport> | null = null;
  return {
    app,
    store,
    config,
    url,
    worker: runner && sender ? { runner, sender } : undefined,
    poller: poller ?? undefined,
    runnerThread: thread ?? undefined,
    operationsUrl:
      typeof operationsAddress === 'object' && operationsAddress ? `http://${config.host}:${operationsAddress.port}` : undefined,
    drain(deadline = Date.now() + config.drainTimeoutMs) {
      draining = true;
      drained ??= (async () => {
        const requests = runsApi
          ? drainHttp(app.server, deadline)
          : operationsApp
            ? drainHttp(operationsApp.server, deadline)
            : Promise.resolve(true);
        const work = [
          runner && sender ? drainWork({ runner, sender, store, log }, deadline) : null,
          thread ? thread.drain(deadline) : null,
        ];
        const [requestsFinished, ...parts] = await Promise.all([requests, ...work]);
        const report: DrainReport = { jobsReleased: 0, notificationsReleased: 0, requestsFinished };
        for (const part of parts) {
          report.jobsReleased += part?.jobsReleased ?? 0;
          report.notificationsReleased += part?.notificationsReleased ?? 0;
        }
        if (!options.thread) log.info(report, 'drained');
        return report;
      })();
      return drained;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(purge);
      for (const u of unsubscribe) u();
      await operationsApp?.close();
      await app.close();
      await poller?.stop();
      await pollerThread?.stop();
      await runner?.stop();
      await sender?.stop();
      await thread?.stop();
      // After a drain that gave attempts back, do not wait for them: their receivers may never answer.
      const report = drained ? await drained : null;
      if (report && report.notificationsReleased > 0) await dispatcher?.destroy().catch(() => {});
      else await dispatcher?.close().catch(() => {});
      // A sweep still running (a slow SFTP server) fails its remaining entries: the next start retries them.
      syncTemps?.close();
      await instances.closeAll();
      await store.close();
    },
  };
}

/**
 * Removes the temp files that synchronous writes of this host's dead runs left (see
 * documents/sync-temps.ts); never rejects. Instances deleted since have nothing to clean.
 */
async function sweepSyncTemps(store: Store, instances: InstanceService, log: Logger, dataDir: string): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  let byId: Map<number, Instance> | null = null;
  try {
    const result = await sweepLeftovers(syncTempsDir(dataDir), async (site, tag) => {
      byId ??= new Map((await store.allInstances()).map((i) => [i.id, i]));
      const instance = byId.get(site.instanceId);
      if (!instance) return;
      await instances.element(instance).removeTemps?.(site.path, tag, site.tree);
    });
    if (result.cleaned + result.failed > 0) log.info(result, 'removed the temp files of synchronous writes a crash interrupted');
    if (result.failed > 0) log.warn(result, 'some temp files of interrupted synchronous writes could not be removed now; the next start tries again');
  } catch (e) {
    log.warn({ err: e }, 'removing the temp files of interrupted synchronous writes failed');
  }
}
