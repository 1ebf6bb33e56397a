/**
 * The CPU-heavy halves of an async event behind one interface: replaying a job's captured
 * request through the same Fastify routes a synchronous call takes, and making one webhook
 * attempt. The Runner and Sender use it on whichever thread they run (the node's, or its runner
 * thread: async/runner-thread.ts), and tests can stand in for it.
 */
import type { Dispatcher } from 'undici';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../http/auth.js';
import { INTERNAL_HEADER } from '../http/auth.js';
import type { ChangeEvent } from '../documents/service.js';
import type { ClaimedJob } from '../store/async.js';
import { deliver, type DeliveryOutcome, type DeliveryTarget } from './deliver.js';

/** What replaying a job's request produced. */
export interface Replayed {
  statusCode: number;
  contentType: string;
  payload: Buffer;
  /** Documents created, changed or deleted by the request (mutating hub calls). */
  changes: ChangeEvent[];
}

export interface Executor {
  replay(job: ClaimedJob): Promise<Replayed>;
  /** One webhook attempt (never throws; see deliver.ts). */
  deliver(target: DeliveryTarget, timeoutMs: number): Promise<DeliveryOutcome>;
}

/** Runs both on this thread: `app.inject` for replays, the egress dispatcher for webhooks. */
export class LocalExecutor implements Executor {
  constructor(
    private readonly app: FastifyInstance,
    private readonly auth: Authenticator,
    private readonly jobChanges: Map<number, ChangeEvent[]>,
    private readonly dispatcher: Dispatcher,
  ) {}

  async replay(job: ClaimedJob): Promise<Replayed> {
    const headers: Record<string, string> = {
      ...job.request.headers,
      [INTERNAL_HEADER]: this.auth.internalHeader({
        organizationId: job.organizationId,
        userId: job.userId,
        instanceId: job.instanceId,
        jobId: job.eventId,
      }),
    };
    try {
      const res = await this.app.inject({
        method: job.request.method as any,
        url: job.request.url,
        headers,
        payload: job.body ?? undefined,
      });
      return {
        statusCode: res.statusCode,
        contentType: String(res.headers['content-type'] ?? ''),
        payload: res.rawPayload,
        changes: this.jobChanges.get(job.eventId) ?? [],
      };
    } finally {
      this.jobChanges.delete(job.eventId);
    }
  }

  deliver(target: DeliveryTarget, timeoutMs: number): Promise<DeliveryOutcome> {
    return deliver(target, { dispatcher: this.dispatcher, timeoutMs });
  }
}
