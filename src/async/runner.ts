/**
 * The runner: claims jobs, replays each captured request in-process through the same Fastify
 * routes a synchronous call takes (`app.inject`), and records the outcome with the notification
 * to send. There is no per-endpoint async code: whatever the route does, the job does.
 *
 * Leases: a claimed job is leased for FERRY_LEASE ms and the lease is renewed by a heartbeat
 * while the job runs, so a long job is never taken twice while this runner lives; if the
 * process dies, the lease expires and another runner (or this one after a restart) runs it
 * again — at-least-once. Outcomes are completed in batches (one transaction per batch).
 */
import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Authenticator } from '../http/auth.js';
import { INTERNAL_HEADER } from '../http/auth.js';
import type { ChangeEvent } from '../documents/service.js';
import type { ClaimedJob, JobOutcome } from '../store/async.js';
import type { Store } from '../store/store.js';
import { API_BASE } from '../http/app.js';
import { publicUrl } from '../config.js';
import { GroupCommit } from './accept.js';
import { ClaimLoop } from './claim-loop.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export class Runner {
  readonly owner = `runner-${crypto.randomBytes(6).toString('hex')}`;
  private readonly running = new Set<number>();
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly loop: ClaimLoop;
  private readonly completer: GroupCommit<JobOutcome, null>;
  private idle: Promise<void> | null = null;
  private idleResolve: (() => void) | null = null;

  constructor(
    private readonly app: FastifyInstance,
    private readonly store: Store,
    private readonly auth: Authenticator,
    private readonly config: Config,
    private readonly jobChanges: Map<number, ChangeEvent[]>,
    private readonly log: Logger,
    /** Called after outcomes are committed: wakes the sender. */
    private readonly onCompleted: () => void,
    private readonly pollMs = 500,
  ) {
    this.loop = new ClaimLoop(
      () => this.claim(),
      async () => this.pollMs,
      (e) => this.log.error({ err: e }, 'claiming jobs failed'),
    );
    this.completer = new GroupCommit(async (outcomes) => {
      await this.store.completeJobs(this.owner, outcomes);
      this.onCompleted();
      return outcomes.map(() => null);
    });
  }

  start(): void {
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.config.leaseMs / 3)));
    this.heartbeat.unref();
    this.wake();
  }

  /** Look for work now (after an accept, or on a NOTIFY from another node). */
  wake(): void {
    this.loop.wake();
  }

  /** Stops claiming and waits for running jobs to finish. */
  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.loop.stop();
    if (this.running.size > 0) {
      this.idle ??= new Promise((resolve) => (this.idleResolve = resolve));
      await this.idle;
    }
  }

  /** One claim for the free slots; true when it filled them all. */
  private async claim(): Promise<boolean> {
    const free = this.config.jobConcurrency - this.running.size;
    if (free <= 0) return false;
    const jobs = await this.store.claimJobs(this.owner, free, this.config.leaseMs, this.config.instanceConcurrency);
    for (const job of jobs) {
      this.running.add(job.eventId);
      void this.run(job);
    }
    return jobs.length === free;
  }

  private async renew(): Promise<void> {
    if (this.running.size === 0) return;
    try {
      await this.store.renewLeases(this.owner, [...this.running], this.config.leaseMs);
    } catch (e) {
      this.log.error({ err: e }, 'renewing leases failed');
    }
  }

  private async run(job: ClaimedJob): Promise<void> {
    try {
      const outcome = await this.execute(job);
      await this.completer.add(outcome);
    } catch (e) {
      // Not completed: the lease expires and the job runs again.
      this.log.error({ err: e, eventId: job.eventId }, 'job could not be completed; it will be retried after its lease');
    } finally {
      this.running.delete(job.eventId);
      this.jobChanges.delete(job.eventId);
      if (this.loop.isStopped && this.running.size === 0) this.idleResolve?.();
      this.wake();
    }
  }

  private async execute(job: ClaimedJob): Promise<JobOutcome> {
    const headers: Record<string, string> = {
      ...job.request.headers,
      [INTERNAL_HEADER]: this.auth.internalHeader({
        organizationId: job.organizationId,
        userId: job.userId,
        instanceId: job.instanceId,
        jobId: job.eventId,
      }),
    };
    const res = await this.app.inject({
      method: job.request.method as any,
      url: job.request.url,
      headers,
      payload: job.body ?? undefined,
    });
    const statusCode = res.statusCode;
    const ok = statusCode >= 200 && statusCode < 300;
    const contentType = String(res.headers['content-type'] ?? '');
    const changes = this.jobChanges.get(job.eventId) ?? [];
    let response: unknown;
    let result: JobOutcome['result'];
    if (ok && MUTATING.has(job.request.method.toUpperCase()) && job.request.url.includes('/hubs/documents/')) {
      response = { events: changes };
    } else if (contentType.includes('json') || !ok) {
      response = parseJson(res.body);
    } else if (res.rawPayload.length === 0 && !contentType) {
      // No body at all (nothing to fetch). An empty body WITH a type is an empty file: a result.
      response = {};
    } else {
      const expiresAt = new Date(Date.now() + this.config.resultRetentionMs);
      result = { contentType: contentType || 'application/octet-stream', data: res.rawPayload, expiresAt };
      response = {
        contentType: result.contentType,
        size: res.rawPayload.length,
        resultUrl: `${publicUrl(this.config)}${API_BASE}/instances/events/${job.eventId}/result`,
      };
    }
    const execution = ok ? 'completed' : 'failed';
    return {
      eventId: job.eventId,
      execution,
      statusCode,
      response,
      result,
      buildNotification: (notificationId) =>
        JSON.stringify({
          eventId: job.eventId,
          instanceId: job.instanceId,
          response,
          notificationId,
          eventStatus: execution,
          statusCode,
        }),
    };
  }
}

function parseJson(text: string): unknown {
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 1000) };
  }
}
