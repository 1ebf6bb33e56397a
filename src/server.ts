/**
 * Starts a Ferry node: configuration → store (migrations) → master key → bootstrap → HTTP API,
 * and, by role, the runner and the sender. `close()` stops them in the reverse order, letting
 * running jobs finish.
 */
import fs from 'node:fs';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { openStore } from './store/index.js';
import type { Store } from './store/store.js';
import { MasterKey } from './identity/crypto.js';
import { bootstrap } from './identity/bootstrap.js';
import { InstanceService } from './instances/service.js';
import { Authenticator } from './http/auth.js';
import { buildApp, type Services } from './http/app.js';
import { LinkSigner } from './documents/links.js';
import { RateLimiter } from './http/ratelimit.js';
import { AsyncIntake } from './async/accept.js';
import { Runner } from './async/runner.js';
import { Sender } from './async/sender.js';
import { createEgressPolicy } from './async/egress.js';

export interface Ferry {
  app: FastifyInstance;
  store: Store;
  config: Config;
  /** Base URL the API listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  close(): Promise<void>;
}

/** Secret-bearing fields pino must never print. */
const REDACT = ['req.headers.authorization', 'headers.authorization', 'authorization', '*.password', '*.secret_key'];

/** Ferry's logger; `destination` defaults to stdout (tests pass a memory stream to read it). */
export function createLogger(config: Config, destination?: pino.DestinationStream): Logger {
  const options = { level: config.logLevel, redact: { paths: REDACT, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

export async function startFerry(config: Config, options: { logger?: Logger; print?: (line: string) => void } = {}): Promise<Ferry> {
  const log = options.logger ?? createLogger(config);
  const print = options.print ?? ((line: string) => process.stdout.write(line + '\n'));
  fs.mkdirSync(config.dataDir, { recursive: true });
  fs.mkdirSync(config.localfsBase, { recursive: true });
  const store = await openStore(config);
  const masterKey = MasterKey.load(config.masterKey, config.dataDir);
  await bootstrap(store, config, print);
  if (!store.capabilities.shared) await store.releaseAllLeases();

  const egress = createEgressPolicy(config.egressAllow);
  const instances = new InstanceService(store, masterKey, config, egress);
  const auth = new Authenticator(store);
  instances.onChange = () => auth.forgetInstances();
  const services: Services = {
    config,
    store,
    instances,
    auth,
    links: new LinkSigner(masterKey),
    jobChanges: new Map(),
    rateLimiter: config.rateLimitPerMinute > 0 ? new RateLimiter(config.rateLimitPerMinute) : undefined,
  };
  const runsApi = config.role !== 'worker';
  const runsWorker = config.role !== 'api';

  let runner: Runner | null = null;
  let sender: Sender | null = null;
  services.intake = new AsyncIntake(config, store, instances, egress, () => runner ?? undefined);
  services.wakeSender = () => sender?.wake();
  const app = await buildApp(services, log);

  const dispatcher = egress.dispatcher({ connectTimeoutMs: Math.min(10_000, config.deliveryTimeoutMs) });
  if (runsWorker) {
    sender = new Sender(store, instances, config, dispatcher, log);
    runner = new Runner(app, store, auth, config, services.jobChanges, log, sender);
  }
  const wakeups = store as Store & { onWake?: (channel: 'jobs' | 'notifications', fn: () => void) => () => void };
  const unsubscribe: (() => void)[] = [];
  if (runsWorker && wakeups.onWake) {
    unsubscribe.push(wakeups.onWake('jobs', () => runner?.wake()));
    unsubscribe.push(wakeups.onWake('notifications', () => sender?.wake()));
  }

  await app.ready();
  let url = '';
  if (runsApi) {
    url = await app.listen({ port: config.port, host: config.host });
  }
  runner?.start();
  sender?.start();
  const purge = setInterval(() => {
    const now = new Date();
    void store.purgeExpired(now, new Date(now.getTime() - 24 * 3600 * 1000)).catch(() => {});
  }, 60_000);
  purge.unref();

  let closed = false;
  return {
    app,
    store,
    config,
    url,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(purge);
      for (const u of unsubscribe) u();
      await app.close();
      await runner?.stop();
      await sender?.stop();
      await dispatcher.close().catch(() => {});
      await instances.closeAll();
      await store.close();
    },
  };
}
