/**
 * Ferry's Prometheus metrics (prom-client): the metric families, the few calls that record into
 * them, and the scrape that renders them.
 *
 * One `metrics` object per thread. The code that does the work (HTTP edge, intake, runner,
 * sender, group commits) calls its record methods directly; they do nothing until `enable()`
 * (FERRY_METRICS=on), so a node with metrics off pays one branch per call. Label children are
 * cached, so a recording is a map lookup and an add — no label hashing on the hot path.
 *
 * Threads: a SQLite node runs its runner and sender on a runner thread, which records into its
 * own `metrics`. A scrape on the node's thread asks that thread for its families
 * (`familiesAsJson`) and sums them with its own (`render`), so one scrape shows the counters of
 * both threads. Gauges read from the store are set by the scrape itself (`setStoreGauges`) —
 * nothing samples on a timer, so an idle node stays asleep.
 *
 * Labels are only those listed per family: never a path, URL, secret or other user value; the
 * HTTP `route` is the route pattern (`/elements/api-v2/hubs/documents/files/:id`).
 *
 * May import: prom-client and Node only.
 */
import { createRequire } from 'node:module';
import client from 'prom-client';

/** How an event's job ended. */
export type FinishOutcome = 'completed' | 'failed' | 'cancelled';
/** How one webhook attempt ended. */
export type AttemptOutcome = 'delivered' | 'failed' | 'timeout' | 'refused';

/** A family as prom-client serialises it (structured-clonable: it crosses threads). */
export type FamilyJson = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>[number];

/** What the store says at scrape time (store gauges). */
export interface StoreGauges {
  pending: number;
  running: number;
  retryWait: number;
  /** Acceptance time of the oldest event whose job waits to run, or null. */
  oldestPendingDate: Date | null;
  notificationsQueued: number;
}

const require = createRequire(import.meta.url);

/**
 * prom-client's default metrics, each registered on its own, all but the event-loop lag
 * percentiles: those keep a 10 ms timer (`monitorEventLoopDelay`) running forever, and an idle
 * Ferry node must be able to sleep. Also without the three `*_total` gauges (see below).
 */
const DEFAULT_METRICS = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'processHandles',
  'processRequests',
  'processResources',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

function registerDefaultMetrics(registry: client.Registry): void {
  for (const name of DEFAULT_METRICS) {
    if (name === 'processResources' && typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo !== 'function') continue;
    const register = require(`prom-client/lib/metrics/${name}`) as (registry: client.Registry, config: object) => void;
    register(registry, {});
  }
  // Gauges named *_total break Prometheus' naming rules (promtool check metrics warns); the
  // per-type gauges beside them (nodejs_active_handles{type} …) sum to the same.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
}

const SECONDS_FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SECONDS_E2E = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21_600, 86_400];
const SECONDS_ATTEMPT = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60];
const BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

const CLUSTER_WIDE = 'Read from the store at scrape time: in cluster mode every node reports the same cluster-wide value.';

/** The metric families, registered on `registry`. */
function families(registry: client.Registry) {
  const r = [registry];
  return {
    httpRequests: new client.Counter({
      name: 'ferry_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code (replayed async jobs not included).',
      labelNames: ['method', 'route', 'status'] as const,
      registers: r,
    }),
    httpDuration: new client.Histogram({
      name: 'ferry_http_request_duration_seconds',
      help: 'Time from the request to its response, by method and route pattern.',
      labelNames: ['method', 'route'] as const,
      buckets: SECONDS_FAST,
      registers: r,
    }),
    eventsAccepted: new client.Counter({
      name: 'ferry_events_accepted_total',
      help: 'Asynchronous requests accepted (durably stored; idempotent repeats not counted), by element.',
      labelNames: ['element'] as const,
      registers: r,
    }),
    eventsFinished: new client.Counter({
      name: 'ferry_events_finished_total',
      help: 'Asynchronous jobs finished, by element and outcome (completed, failed, cancelled).',
      labelNames: ['element', 'outcome'] as const,
      registers: r,
    }),
    events: new client.Gauge({
      name: 'ferry_events',
      help: `Events by state: pending (accepted, waiting to run), running (leased to a runner), retry_wait (webhook waiting for its next attempt). ${CLUSTER_WIDE}`,
      labelNames: ['state'] as const,
      registers: r,
    }),
    oldestPending: new client.Gauge({
      name: 'ferry_events_oldest_pending_age_seconds',
      help: `Age of the oldest event waiting to run (0 when none waits). ${CLUSTER_WIDE}`,
      registers: r,
    }),
    endToEnd: new client.Histogram({
      name: 'ferry_event_end_to_end_seconds',
      help: 'Time from accepting an asynchronous request to the first successful delivery of its webhook.',
      buckets: SECONDS_E2E,
      registers: r,
    }),
    attempts: new client.Counter({
      name: 'ferry_webhook_attempts_total',
      help: 'Webhook delivery attempts, by outcome: delivered (2xx), failed (other answers, connection errors), timeout, refused (connection refused or egress policy).',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    attemptDuration: new client.Histogram({
      name: 'ferry_webhook_attempt_duration_seconds',
      help: 'Duration of one webhook delivery attempt.',
      buckets: SECONDS_ATTEMPT,
      registers: r,
    }),
    queued: new client.Gauge({
      name: 'ferry_notifications_queued',
      help: `Webhooks held by the queue failure policy or an inactive subscription, waiting for a redelivery. ${CLUSTER_WIDE}`,
      registers: r,
    }),
    commitDuration: new client.Histogram({
      name: 'ferry_store_commit_duration_seconds',
      help: 'Duration of one group commit (accepts, job completions or delivery records in one transaction).',
      buckets: SECONDS_FAST,
      registers: r,
    }),
    commitBatch: new client.Histogram({
      name: 'ferry_store_commit_batch_size',
      help: 'Items written by one group commit.',
      buckets: BATCH_SIZES,
      registers: r,
    }),
  };
}

type Families = ReturnType<typeof families>;

interface Child {
  inc(): void;
}
interface Observer {
  observe(value: number): void;
}

export class FerryMetrics {
  /** Ferry's own families: summed across threads at scrape time. */
  readonly registry = new client.Registry();
  /** process_* and nodejs_* of the node's thread (registered by `enable({ process: true })`). */
  readonly processRegistry = new client.Registry();
  private readonly f: Families = families(this.registry);
  private on = false;
  private processMetrics = false;
  private readonly counters = new Map<string, Child>();
  private readonly histograms = new Map<string, Observer>();

  get enabled(): boolean {
    return this.on;
  }

  /** Starts recording; `process` also registers the default process_* and nodejs_* metrics. */
  enable(options: { process: boolean }): void {
    this.on = true;
    if (options.process && !this.processMetrics) {
      this.processMetrics = true;
      registerDefaultMetrics(this.processRegistry);
    }
  }

  /** One answered HTTP request (`route`: the route pattern). */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    if (!this.on) return;
    const key = `${method} ${route}`;
    let counter = this.counters.get(`${key} ${status}`);
    if (!counter) {
      counter = this.f.httpRequests.labels(method, route, String(status));
      this.counters.set(`${key} ${status}`, counter);
    }
    counter.inc();
    let histogram = this.histograms.get(key);
    if (!histogram) {
      histogram = this.f.httpDuration.labels(method, route);
      this.histograms.set(key, histogram);
    }
    histogram.observe(seconds);
  }

  eventsAccepted(element: string, count: number): void {
    if (!this.on || count === 0) return;
    const key = `accepted ${element}`;
    let counter = this.counters.get(key) as (Child & { inc(n?: number): void }) | undefined;
    if (!counter) {
      counter = this.f.eventsAccepted.labels(element);
      this.counters.set(key, counter);
    }
    counter.inc(count);
  }

  eventFinished(element: string, outcome: FinishOutcome): void {
    if (!this.on) return;
    const key = `finished ${element} ${outcome}`;
    let counter = this.counters.get(key);
    if (!counter) {
      counter = this.f.eventsFinished.labels(element, outcome);
      this.counters.set(key, counter);
    }
    counter.inc();
  }

  webhookAttempt(outcome: AttemptOutcome, seconds: number): void {
    if (!this.on) return;
    const key = `attempt ${outcome}`;
    let counter = this.counters.get(key);
    if (!counter) {
      counter = this.f.attempts.labels(outcome);
      this.counters.set(key, counter);
    }
    counter.inc();
    this.f.attemptDuration.observe(seconds);
  }

  /** Accept → first successful delivery of the event's webhook. */
  endToEnd(seconds: number): void {
    if (this.on) this.f.endToEnd.observe(Math.max(0, seconds));
  }

  storeCommit(batchSize: number, seconds: number): void {
    if (!this.on) return;
    this.f.commitBatch.observe(batchSize);
    this.f.commitDuration.observe(seconds);
  }

  /** Sets the store gauges (called by the scrape, on the node's thread). */
  setStoreGauges(g: StoreGauges, now = Date.now()): void {
    this.f.events.labels('pending').set(g.pending);
    this.f.events.labels('running').set(g.running);
    this.f.events.labels('retry_wait').set(g.retryWait);
    this.f.oldestPending.set(g.oldestPendingDate ? Math.max(0, (now - g.oldestPendingDate.getTime()) / 1000) : 0);
    this.f.queued.set(g.notificationsQueued);
  }

  /** Ferry's families as JSON (what a runner thread sends its node's thread). */
  familiesAsJson(): Promise<FamilyJson[]> {
    return this.registry.getMetricsAsJSON();
  }

  /**
   * The exposition text of one scrape: this thread's families summed with `others` (the runner
   * thread's), then process_* and nodejs_*.
   */
  async render(others: FamilyJson[][] = []): Promise<string> {
    let own: string;
    if (others.length === 0) {
      own = await this.registry.metrics();
    } else {
      const merged = client.AggregatorRegistry.aggregate([await this.registry.getMetricsAsJSON(), ...others]);
      own = await merged.metrics();
    }
    return own + '\n' + (await this.processRegistry.metrics());
  }

  /** The Content-Type of the exposition format. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** This thread's metrics. */
export const metrics = new FerryMetrics();
