/**
 * The readiness verdict of `GET /readyz`: a node is ready when its store answers a query within
 * 1 s, the store's migrations are those this Ferry needs, its runner (nodes that run jobs) is
 * making progress, and it is not draining. Each check is named in the answer, with a short
 * reason when it fails — never a configuration value or a secret.
 *
 * Runner progress: a claim, a lease renewal or a job's end counts. An idle runner (nothing
 * running, nothing known to wait) is healthy however long it has slept: nothing wakes it on a
 * timer. A runner with work that shows no progress for `stallMs` is stuck.
 *
 * May import: Node, store types.
 */
import type { SchemaStatus } from '../store/operations.js';

/** What a runner reports about itself (Runner.progress). */
export interface RunnerProgress {
  lastProgressAt: number;
  running: number;
  backlog: boolean;
}

export const CHECK_TIMEOUT_MS = 1000;

export type CheckResult = 'ok' | string;

export interface ReadinessInput {
  /** The store's schema status (its query is the store check). */
  schema: () => Promise<SchemaStatus>;
  /** The runner's progress, on a node that runs jobs. */
  runner?: () => Promise<RunnerProgress>;
  draining: () => boolean;
  /** How long a runner with work may show no progress (default: 3 leases, at least 60 s). */
  stallMs: number;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

class TimedOut extends Error {}

/** `p`, or a TimedOut rejection after `ms`. */
export function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimedOut()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export async function readiness(input: ReadinessInput, now = () => Date.now()): Promise<Readiness> {
  const checks: Record<string, CheckResult> = {};
  const store = within(input.schema(), CHECK_TIMEOUT_MS).then(
    (s) => {
      checks.store = 'ok';
      checks.migrations = s.applied === s.required ? 'ok' : `the store's schema is at version ${s.applied}, this Ferry needs ${s.required}`;
    },
    (e) => {
      checks.store = e instanceof TimedOut ? `no answer within ${CHECK_TIMEOUT_MS / 1000} s` : 'the query failed';
      checks.migrations = 'unknown (the store did not answer)';
    },
  );
  const runner = input.runner
    ? within(input.runner(), CHECK_TIMEOUT_MS).then(
        (p) => {
          const idleFor = now() - p.lastProgressAt;
          const hasWork = p.running > 0 || p.backlog;
          checks.runner = !hasWork || idleFor <= input.stallMs ? 'ok' : `no progress for ${Math.round(idleFor / 1000)} s with jobs to run`;
        },
        (e) => {
          checks.runner = e instanceof TimedOut ? `the runner thread did not answer within ${CHECK_TIMEOUT_MS / 1000} s` : 'the runner did not answer';
        },
      )
    : undefined;
  await Promise.all([store, runner]);
  checks.drain = input.draining() ? 'draining: this node is stopping' : 'ok';
  const ordered: Record<string, CheckResult> = {};
  for (const name of ['store', 'migrations', 'runner', 'drain']) if (name in checks) ordered[name] = checks[name];
  return { ready: Object.values(ordered).every((c) => c === 'ok'), checks: ordered };
}
