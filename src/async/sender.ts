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
import type { Dispatcher } from 'undici';
import type { Config } from '../config.js';
import type { InstanceService } from '../instances/service.js';
import type { DeliveryRecord, DueNotification } from '../store/async.js';
import type { Store } from '../store/store.js';
import { retryDelayMs } from './backoff.js';
import { deliver } from './deliver.js';
import { signNotification } from './signing.js';
import { GroupCommit } from './accept.js';
import { ClaimLoop } from './claim-loop.js';

export const FAILURE_POLICY_SETTING = 'notification.webhook.failure.policy';

/** How long a signature key is cached by the sender. */
const KEY_CACHE_MS = 5_000;

export class Sender {
  readonly owner = `sender-${crypto.randomBytes(6).toString('hex')}`;
  private readonly inFlight = new Map<string, number>();
  private readonly subscriptionsOf = new Map<string, Set<number>>();
  private total = 0;
  private readonly loop: ClaimLoop;
  private readonly increments: number[];
  private readonly pending = new Set<Promise<void>>();
  private readonly keys = new Map<number, { key: string | undefined; until: number }>();
  /** Delivery outcomes of one event-loop turn are recorded in one transaction. */
  private readonly recorder = new GroupCommit<DeliveryRecord, null>(async (records) => {
    await this.store.recordDeliveries(records);
    return records.map(() => null);
  });

  constructor(
    private readonly store: Store,
    private readonly instances: InstanceService,
    private readonly config: Config,
    private readonly dispatcher: Dispatcher,
    private readonly log: Logger,
    private readonly pollMs = 500,
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

  wake(): void {
    this.loop.wake();
  }

  async stop(): Promise<void> {
    // A claim in progress may still start attempts: wait for it, then for every attempt.
    await this.loop.stop();
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /**
   * A lease covering one attempt (bounded by the delivery timeout) and its recording, with room
   * to spare — and no longer: a notification whose node died is delivered by another node as
   * soon as the lease runs out.
   */
  private get leaseMs(): number {
    return this.config.deliveryTimeoutMs + 10_000;
  }

  private saturated(): number[] {
    const out: number[] = [];
    for (const [origin, n] of this.inFlight) {
      if (n >= this.config.originConcurrency) out.push(...(this.subscriptionsOf.get(origin) ?? []));
    }
    return out;
  }

  /** One claim for the free slots; true when it filled them all with deliverable work. */
  private async claim(): Promise<boolean> {
    const free = this.config.deliveryConcurrency - this.total;
    if (free <= 0) return false;
    const due = await this.store.claimNotifications(this.owner, free, this.leaseMs, this.saturated());
    const deferred: number[] = [];
    for (const n of due) {
      if (this.loop.isStopped) {
        deferred.push(n.notificationId);
        continue;
      }
      const origin = originOf(n.url);
      const busy = this.inFlight.get(origin) ?? 0;
      let subs = this.subscriptionsOf.get(origin);
      if (!subs) this.subscriptionsOf.set(origin, (subs = new Set()));
      subs.add(n.subscriptionId);
      if (busy >= this.config.originConcurrency) {
        deferred.push(n.notificationId);
        continue;
      }
      this.inFlight.set(origin, busy + 1);
      this.total++;
      const p = this.attempt(n, origin).finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
    if (deferred.length > 0) await this.store.releaseNotifications(deferred);
    return due.length === free && deferred.length === 0;
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
      const outcome = await deliver(
        { url: n.url, body: n.body, headers },
        { dispatcher: this.dispatcher, timeoutMs: this.config.deliveryTimeoutMs },
      );
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
      this.inFlight.set(origin, (this.inFlight.get(origin) ?? 1) - 1);
      this.total--;
      this.wake();
    }
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
   * The instance's signature key, cached briefly: a key changed by PATCH applies to deliveries
   * starting up to KEY_CACHE_MS later.
   */
  private async signatureKey(n: DueNotification): Promise<string | undefined> {
    const now = Date.now();
    const cached = this.keys.get(n.instanceId);
    if (cached && cached.until > now) return cached.key;
    const instance = await this.store.getInstance(n.organizationId, n.instanceId);
    const key = instance ? this.instances.unseal(instance)['event.notification.signature.key'] || undefined : undefined;
    if (this.keys.size > 10_000) this.keys.clear();
    this.keys.set(n.instanceId, { key, until: now + KEY_CACHE_MS });
    return key;
  }

  private async headers(n: DueNotification): Promise<Record<string, string>> {
    const key = await this.signatureKey(n);
    // Stable across retries (receivers dedupe on it) and unique across stores: the creation
    // time keeps a fresh data dir's notification 1 from repeating an old one's id.
    const webhookId = `msg_${n.notificationId}_${n.createdDate.getTime().toString(36)}`;
    return signNotification(n.body, key || undefined, webhookId, Math.floor(Date.now() / 1000));
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
