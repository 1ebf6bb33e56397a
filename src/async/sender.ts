/**
 * The sender: delivers notifications to callback URLs, signed, through the egress policy,
 * with retries on the configured schedule, `Retry-After` honoured, 410 stopping at once, and
 * the account's failure policy (`retry` | `queue`) applied.
 *
 * Isolation: attempts in flight are limited per callback origin (FERRY_ORIGIN_CONCURRENCY); a
 * saturated origin's subscriptions are left out of the next claims, so a slow or dead receiver
 * holds only its own slots and never the healthy receivers' (DESIGN §1.5 fairness).
 *
 * Retry timing: the schedule lists offsets from the first failure (4, 16, 64 … s); retry x is
 * scheduled at the difference between offsets x and x-1 after attempt x, with jitter.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { InstanceService } from '../instances/service.js';
import type { DeliveryRecord, DueNotification, NotificationOffer } from '../store/async.js';
import type { Store } from '../store/store.js';
import { retryDelayMs } from './backoff.js';
import type { Executor } from './executor.js';
import { signNotification } from './signing.js';
import { keysAt, onKeyChange, type SigningKeys } from '../instances/signature-keys.js';
import { GroupCommit } from './accept.js';
import { ClaimLoop } from '../claim-loop.js';
import { Reservations, SlotCounts } from './reservations.js';
import type { NotificationSink } from './runner.js';
import { metrics } from '../observability/metrics.js';
import { continueTrace } from '../observability/tracing.js';

export const FAILURE_POLICY_SETTING = 'notification.webhook.failure.policy';

/**
 * How long a claimed notification may wait in memory for its origin to have room. Its lease
 * (delivery timeout + 10 s) must still cover a whole attempt when it starts.
 */
const HOLD_MS = 5_000;

/**
 * How long an instance's signature keys are cached by the sender. A change made on this process
 * drops the entry at once (signature-keys.ts); other nodes see it within this time.
 */
const KEY_CACHE_MS = 5_000;

export class Sender implements NotificationSink {
  readonly owner = `sender-${crypto.randomBytes(6).toString('hex')}`;
  /** Attempts in flight, per callback origin and in all. */
  private readonly inFlight = new SlotCounts<string>();
  private readonly subscriptionsOf = new Map<string, Set<number>>();
  /**
   * Claimed notifications of an origin that was full when they arrived, oldest first: the next
   * finished attempt to that origin starts one at once, without a claim. Held only while their
   * lease leaves room for a whole attempt (HOLD_MS), then given back.
   */
  private readonly waiting = new Map<string, { n: DueNotification; since: number }[]>();
  /** True when due notifications may be waiting in the store: handoffs stop until a claim drains them. */
  private backlog = true;
  private readonly loop: ClaimLoop;
  private readonly increments: number[];
  private readonly pending = new Set<Promise<void>>();
  /** Signing keys per instance, or their load in flight (concurrent sends of one instance share it). */
  private readonly keys = new Map<number, { keys: Promise<SigningKeys>; until: number }>();
  private readonly stopKeyWatch = onKeyChange((instanceId) => this.keys.delete(instanceId));
  /** Notifications with an attempt in flight (what a drain gives back when it cannot wait). */
  private readonly attempting = new Set<number>();
  private abandoned: (() => void) | null = null;
  private readonly abandonedSignal = new Promise<void>((resolve) => (this.abandoned = resolve));
  private isAbandoned = false;
  /** Delivery outcomes of one event-loop turn are recorded in one transaction. */
  private readonly recorder = new GroupCommit<DeliveryRecord, null>(async (records) => {
    await this.store.recordDeliveries(records);
    return records.map(() => null);
  });

  constructor(
    private readonly store: Store,
    private readonly instances: InstanceService,
    private readonly config: Config,
    private readonly executor: Executor,
    private readonly log: Logger,
    /** The fallback poll (FERRY_POLL_INTERVAL); retries due sooner are slept for exactly. */
    private readonly pollMs = config.pollMs,
  ) {
    this.loop = new ClaimLoop(
      () => this.claim(),
      () => this.sleepMs(),
      (e) => this.log.error({ err: e }, 'claiming notifications failed'),
    );
    const s = config.deliveryRetrySchedule;
    this.increments = s.map((v, i) => Math.max(0, i === 0 ? v : v - s[i - 1]));
  }

  start(): void {
    this.wake();
  }

  /** While paused the sender starts no claim; attempts in flight and handed-off notifications go on. */
  pause(value: boolean): void {
    this.loop.pause(value);
  }

  /** Look for due notifications now (a NOTIFY, a redelivery, a refused handoff). */
  wake(): void {
    this.backlog = true;
    this.loop.wake();
  }

  /** A handoff for notifications being created on this node, or undefined when they must queue. */
  offer(): Reservations<NotificationOffer, string> | undefined {
    if (this.backlog || this.loop.isStopped) return undefined;
    return new Reservations<NotificationOffer, string>(this.owner, this.leaseMs, (offer) => {
      if (this.inFlight.total >= this.config.deliveryConcurrency) return null;
      const origin = originOf(offer.url);
      if (this.inFlight.of(origin) >= this.config.originConcurrency) return null;
      this.inFlight.take(origin);
      return origin;
    });
  }

  /** Delivers what the store handed off; anything left in the store is claimed. */
  adopt(handoff: Reservations<NotificationOffer, unknown> | undefined, due: DueNotification[]): void {
    if (!handoff) {
      this.wake();
      return;
    }
    handoff.settle(due, (n) => originOf(n.url), (origin) => this.inFlight.give(origin as string));
    for (const n of due) {
      const origin = originOf(n.url);
      this.subscribe(origin, n.subscriptionId);
      this.launch(n, origin);
    }
    if (handoff.refused > 0) this.wake();
  }

  async stop(): Promise<void> {
    // A claim in progress may still start attempts: wait for it, then for every attempt.
    await this.loop.stop();
    this.stopKeyWatch();
    await this.releaseWaiting(() => true);
    while (this.pending.size > 0 && !this.isAbandoned) await Promise.race([Promise.allSettled([...this.pending]), this.abandonedSignal]);
  }

  /**
   * A drain that ran out of time: `stop()` returns without waiting for the attempts in flight,
   * whose notification ids are returned for the store to release (lifecycle/drain.ts).
   */
  abandon(): number[] {
    this.isAbandoned = true;
    this.abandoned?.();
    return [...this.attempting];
  }

  /**
   * A lease covering one attempt (bounded by the delivery timeout) and its recording, with room
   * to spare — and no longer: a notification whose node died is delivered by another node as
   * soon as the lease runs out.
   */
  private get leaseMs(): number {
    return this.config.deliveryTimeoutMs + 10_000;
  }

  /**
   * Subscriptions left out of the next claim: those of origins with every attempt slot busy,
   * and notifications already held for them (they need no more until those have started).
   */
  private saturated(): number[] {
    const out: number[] = [];
    for (const origin of this.inFlight.atLeast(this.config.originConcurrency)) {
      if (this.waiting.has(origin)) out.push(...(this.subscriptionsOf.get(origin) ?? []));
    }
    return out;
  }

  /** One claim for the free slots; true when it filled them all with deliverable work. */
  private async claim(): Promise<boolean> {
    await this.releaseWaiting((w) => w.since < Date.now() - HOLD_MS);
    const free = this.config.deliveryConcurrency - this.inFlight.total;
    if (free <= 0) {
      this.backlog = true;
      return false;
    }
    const due = await this.store.claimNotifications(this.owner, free, this.leaseMs, this.saturated());
    const deferred: number[] = [];
    for (const n of due) {
      if (this.loop.isStopped) {
        deferred.push(n.notificationId);
        continue;
      }
      const origin = originOf(n.url);
      const busy = this.inFlight.of(origin);
      this.subscribe(origin, n.subscriptionId);
      if (busy >= this.config.originConcurrency) {
        const queue = this.waiting.get(origin) ?? [];
        if (queue.length >= this.config.originConcurrency) {
          deferred.push(n.notificationId);
        } else {
          queue.push({ n, since: Date.now() });
          this.waiting.set(origin, queue);
        }
        continue;
      }
      this.inFlight.take(origin);
      this.launch(n, origin);
    }
    if (deferred.length > 0) await this.store.releaseNotifications(deferred);
    // Short, nothing deferred and no origin left out: nothing due waits in the store.
    this.backlog = due.length === free || deferred.length > 0 || this.saturated().length > 0;
    return due.length === free && deferred.length === 0;
  }

  private subscribe(origin: string, subscriptionId: number): void {
    let subs = this.subscriptionsOf.get(origin);
    if (!subs) this.subscriptionsOf.set(origin, (subs = new Set()));
    subs.add(subscriptionId);
  }

  /** Starts an attempt whose slot (total, origin) is already counted. */
  private launch(n: DueNotification, origin: string): void {
    this.attempting.add(n.notificationId);
    const p = this.attempt(n, origin).finally(() => {
      this.pending.delete(p);
      this.attempting.delete(n.notificationId);
    });
    this.pending.add(p);
  }

  /** How long to sleep: until the next notification is due, at most the poll interval. */
  private async sleepMs(): Promise<number> {
    let delay = this.pollMs;
    const next = await this.store.nextNotificationDue();
    if (next) delay = Math.min(delay, Math.max(0, next.getTime() - Date.now()));
    // Due notifications of a saturated origin would make the next due time "now" forever; each
    // finished attempt wakes the sender anyway, so poll gently meanwhile.
    if (this.saturated().length > 0) delay = Math.max(delay, 50);
    return delay;
  }

  private async attempt(n: DueNotification, origin: string): Promise<void> {
    const at = new Date();
    let record: DeliveryRecord;
    try {
      const headers = await this.headers(n);
      const outcome = await this.executor.deliver({ url: n.url, body: n.body, headers }, this.config.deliveryTimeoutMs);
      metrics.webhookAttempt(outcome.result, outcome.durationMs / 1000);
      if (outcome.kind === 'delivered' && n.acceptedDate) metrics.endToEnd((Date.now() - n.acceptedDate.getTime()) / 1000);
      record = {
        notificationId: n.notificationId,
        url: n.url,
        at,
        durationMs: outcome.durationMs,
        statusCode: outcome.statusCode ?? null,
        error: outcome.error ?? null,
        next: await this.nextState(n, outcome.kind, outcome.retryAfterMs),
      };
    } catch (e) {
      this.log.error({ err: e, notificationId: n.notificationId }, 'delivery attempt failed unexpectedly');
      record = {
        notificationId: n.notificationId,
        url: n.url,
        at,
        durationMs: Date.now() - at.getTime(),
        statusCode: null,
        error: 'internal error preparing the delivery',
        next: await this.nextState(n, 'retry', undefined),
      };
    }
    try {
      await this.recorder.add(record);
    } catch (e) {
      this.log.error({ err: e, notificationId: n.notificationId }, 'recording a delivery failed; it will be retried after its lease');
    } finally {
      this.inFlight.give(origin);
      const next = this.loop.isStopped ? undefined : this.nextWaiting(origin);
      if (next) {
        this.inFlight.take(origin);
        this.launch(next, origin);
      } else if (this.backlog) {
        this.loop.wake();
      }
    }
  }

  /** The oldest notification held for this origin that still has time for an attempt. */
  private nextWaiting(origin: string): DueNotification | undefined {
    const queue = this.waiting.get(origin);
    const entry = queue?.shift();
    if (!queue || !entry) return undefined;
    if (queue.length === 0) this.waiting.delete(origin);
    if (entry.since >= Date.now() - HOLD_MS) return entry.n;
    // Held too long: give it (and any older ones) back; the next claim takes them in order.
    void this.store.releaseNotifications([entry.n.notificationId]).catch(() => {});
    return this.nextWaiting(origin);
  }

  /** Gives held notifications back to the store (due again at once). */
  private async releaseWaiting(which: (w: { since: number }) => boolean): Promise<void> {
    const ids: number[] = [];
    for (const [origin, queue] of this.waiting) {
      const keep = queue.filter((w) => !which(w));
      for (const w of queue) if (which(w)) ids.push(w.n.notificationId);
      if (keep.length) this.waiting.set(origin, keep);
      else this.waiting.delete(origin);
    }
    if (ids.length) await this.store.releaseNotifications(ids);
  }

  private async nextState(
    n: DueNotification,
    kind: 'delivered' | 'retry' | 'gone',
    retryAfterMs: number | undefined,
  ): Promise<DeliveryRecord['next']> {
    if (kind === 'delivered') return { status: 'delivered' };
    if (kind === 'gone') return { status: 'queued', deactivate: true };
    const settings = await this.store.getSettings(n.organizationId);
    if (settings[FAILURE_POLICY_SETTING] === 'queue') return { status: 'queued', deactivate: false };
    const delay = retryDelayMs(n.attempts + 1, this.increments, this.config.deliveryJitter);
    if (delay === null) return { status: 'queued', deactivate: true };
    return { status: 'retry', at: new Date(Date.now() + Math.max(delay, retryAfterMs ?? 0)) };
  }

  /**
   * The instance's signature keys (current and previous ones with their overlap), cached
   * briefly; which of them sign is decided at each send (`keysAt`).
   */
  private signingKeys(n: DueNotification): Promise<SigningKeys> {
    const now = Date.now();
    const cached = this.keys.get(n.instanceId);
    if (cached && cached.until > now) return cached.keys;
    const keys = this.store
      .getInstance(n.organizationId, n.instanceId)
      .then((instance) => (instance ? this.instances.signingKeys(instance) : { current: undefined, retired: [] }));
    if (this.keys.size > 10_000) this.keys.clear();
    const entry = { keys, until: now + KEY_CACHE_MS };
    this.keys.set(n.instanceId, entry);
    // A failed load is not kept: the next send asks again.
    keys.catch(() => {
      if (this.keys.get(n.instanceId) === entry) this.keys.delete(n.instanceId);
    });
    return keys;
  }

  /**
   * The headers of one attempt, signed now with the keys current now — the one place webhooks
   * are signed, so retries and redeliveries never carry a key that was replaced since.
   */
  private async headers(n: DueNotification): Promise<Record<string, string>> {
    const keys = await this.signingKeys(n);
    // Stable across retries (receivers dedupe on it) and unique across stores: the creation
    // time keeps a fresh data dir's notification 1 from repeating an old one's id.
    const webhookId = `msg_${n.notificationId}_${n.createdDate.getTime().toString(36)}`;
    const now = Date.now();
    const signed = signNotification(n.body, keysAt(keys, now), webhookId, Math.floor(now / 1000));
    // Each attempt is a span of the event's trace: same trace id, a new span id.
    return { ...signed, ...continueTrace(n.traceparent, n.tracestate) };
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
