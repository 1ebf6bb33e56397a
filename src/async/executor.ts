/**
 * The CPU-heavy halves of an async event behind one interface: replaying a job's captured
 * request through the same Fastify routes a synchronous call takes (async/replay.ts), and
 * making one webhook attempt. The Runner and Sender use it on whichever thread they run (the
 * node's, or its runner thread: async/runner-thread.ts), and tests can stand in for it.
 *
 * The replay carries the job's context (documents/job.ts: its event id, for crash recovery) to
 * the documents service through a map only the runner writes, keyed by the job id that the
 * sealed internal identity names; an upload's body streams from its spool file. The context
 * carries the runner's stop signal and progress sink too (issue 16); an upload reports the
 * bytes of its body as they are read.
 */
import { Transform, pipeline, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { replayRequest } from './replay.js';
import type { Authenticator } from '../http/auth.js';
import { INTERNAL_HEADER } from '../http/auth.js';
import type { ChangeEvent } from '../documents/service.js';
import { jobContext, type JobContext, type JobProgress } from '../documents/job.js';
import { pausePoint } from '../testing/pause-points.js';
import type { Spool } from './spool.js';
import type { ClaimedJob } from '../store/async.js';
import type { JobJournalStore } from '../store/store.js';
import { deliver, type DeliveryOutcome, type DeliveryTarget } from './deliver.js';

/** What replaying a job's request produced. */
export interface Replayed {
  statusCode: number;
  contentType: string;
  payload: Buffer;
  /** Documents created, changed or deleted by the request (mutating hub calls). */
  changes: ChangeEvent[];
}

/** What the runner gives a job's run: its stop signal (cancel, drain) and its progress sink. */
export interface RunControl {
  signal: AbortSignal;
  progress(update: JobProgress): void;
}

export interface Executor {
  replay(job: ClaimedJob, control?: RunControl): Promise<Replayed>;
  /** After the job's outcome is stored: drops what it held (its spool file). */
  finished?(job: ClaimedJob): Promise<void>;
  /** One webhook attempt (never throws; see deliver.ts). */
  deliver(target: DeliveryTarget, timeoutMs: number): Promise<DeliveryOutcome>;
}

/** Runs both on this thread: the router for replays (async/replay.ts), the egress dispatcher for webhooks. */
export class LocalExecutor implements Executor {
  constructor(
    private readonly app: FastifyInstance,
    private readonly auth: Authenticator,
    private readonly jobChanges: Map<number, ChangeEvent[]>,
    private readonly dispatcher: Dispatcher,
    private readonly journal: JobJournalStore,
    private readonly jobContexts: Map<number, JobContext> = new Map(),
    private readonly spool?: Spool,
  ) {}

  async finished(job: ClaimedJob): Promise<void> {
    if (job.request.spool && this.spool) await this.spool.remove(job.request.spool);
  }

  /** The spooled body of an upload job, or a failure to report when it is gone. */
  private async spooledBody(job: ClaimedJob): Promise<{ stream: NodeJS.ReadableStream } | { missing: Replayed }> {
    try {
      if (!this.spool) throw Object.assign(new Error('no spool'), { code: 'ENOENT' });
      return { stream: await this.spool.open(job.request.spool!) };
    } catch {
      const message =
        'The upload body of this event is missing from the spool (FERRY_SPOOL_DIR): nodes of a cluster must share that folder; upload the file again';
      return { missing: { statusCode: 500, contentType: 'application/json', payload: Buffer.from(JSON.stringify({ message })), changes: [] } };
    }
  }

  async replay(job: ClaimedJob, control?: RunControl): Promise<Replayed> {
    const headers: Record<string, string> = {
      ...job.request.headers,
      [INTERNAL_HEADER]: this.auth.internalHeader({
        organizationId: job.organizationId,
        userId: job.userId,
        instanceId: job.instanceId,
        jobId: job.eventId,
      }),
    };
    let payload: Buffer | NodeJS.ReadableStream | undefined = job.body ?? undefined;
    if (job.request.spool) {
      const body = await this.spooledBody(job);
      if ('missing' in body) return body.missing;
      payload = control ? countedBody(body.stream as Readable, job.request.spool.size, job.eventId, control) : body.stream;
      headers['content-length'] = String(job.request.spool.size);
    }
    this.jobContexts.set(job.eventId, jobContext(job.eventId, job.attempts, this.journal, control?.signal, control?.progress));
    try {
      const input = { method: job.request.method, url: job.request.url, headers, payload };
      // Closing: inject refuses the replay (the job runs again after its lease), where the
      // router would answer it 503.
      const res = this.app.routesOpen() ? await replayRequest(this.app.routing, input) : await this.app.inject(input as InjectOptions);
      return {
        statusCode: res.statusCode,
        contentType: String(res.headers['content-type'] ?? ''),
        payload: res.rawPayload,
        changes: this.jobChanges.get(job.eventId) ?? [],
      };
    } finally {
      this.jobChanges.delete(job.eventId);
      this.jobContexts.delete(job.eventId);
      if (payload && typeof (payload as any).destroy === 'function') (payload as any).destroy();
    }
  }

  deliver(target: DeliveryTarget, timeoutMs: number): Promise<DeliveryOutcome> {
    return deliver(target, { dispatcher: this.dispatcher, timeoutMs });
  }
}

/**
 * An upload's body as read from the spool, reporting its bytes as progress (whatever element
 * writes it: the body flows only as fast as the element takes it), and passing the
 * `body-chunk` pause point of the cancellation tests.
 */
function countedBody(spooled: Readable, size: number, eventId: number, control: RunControl): Readable {
  control.progress({ bytesTotal: size });
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      control.progress({ bytes: chunk.length });
      const paused = pausePoint('body-chunk', eventId, control.signal);
      if (paused) void paused.then(() => done(null, chunk));
      else done(null, chunk);
    },
  });
  // Either end failing or closing early ends the other: a cancelled write leaves no open file.
  pipeline(spooled, counter, () => undefined);
  return counter;
}
