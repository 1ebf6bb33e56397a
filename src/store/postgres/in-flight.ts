/**
 * What this node has in flight against the shared store, so that its handoffs agree with its
 * runner's counts and keep its accepts in order. On SQLite every call is one synchronous
 * transaction, so nothing overlaps; here statements of one node overlap, and a statement not
 * yet committed is invisible to the others. Only this process can see its own overlaps, so
 * these rules live in memory, per store; across nodes the database locks decide.
 *
 * - A job handoff counts on the runner's own count of its jobs (`take`), which misses the jobs
 *   of a claim still in flight, and a claim counts the leases in the database, which misses the
 *   jobs of a handoff whose statement has not run yet. So: an accept offers nothing while a
 *   claim of the same owner is in flight, and a claim waits for the handoffs of its owner that
 *   were offered before it.
 * - Jobs start in the order they were accepted here: an accept leaving jobs of an instance for a
 *   claim makes later accepts offer nothing of that instance (until it commits, a claim cannot
 *   see those jobs, and the runner may believe nothing waits), and waits for the accepts handing
 *   off that instance's jobs that started before it, so its jobs draw later ids.
 */
export class InFlight {
  private readonly claims = new Map<string, number>();
  private readonly handoffsByOwner = new Map<string, Set<Promise<unknown>>>();
  private readonly leaving = new Map<number, number>();
  private readonly handing = new Map<number, Set<Promise<unknown>>>();

  /** Whether a claim of `owner` is in flight (its jobs are not in the runner's count yet). */
  claiming(owner: string): boolean {
    return this.claims.has(owner);
  }

  /** Whether an accept leaving jobs of this instance for a claim is in flight. */
  isLeaving(instanceId: number): boolean {
    return this.leaving.has(instanceId);
  }

  /** The accepts in flight handing off jobs of these instances. */
  handoffsOf(instances: Iterable<number>): Promise<unknown>[] {
    const out = new Set<Promise<unknown>>();
    for (const i of instances) for (const p of this.handing.get(i) ?? []) out.add(p);
    return [...out];
  }

  /** Registers an accept until `done` settles; `owner` is its handoff's, when it offers jobs. */
  accept(leaving: Set<number>, handing: Set<number>, owner: string | null, done: Promise<unknown>): void {
    bump(this.leaving, leaving, 1);
    for (const i of handing) add(this.handing, i, done);
    if (owner !== null && handing.size) add(this.handoffsByOwner, owner, done);
    const untrack = () => {
      bump(this.leaving, leaving, -1);
      for (const i of handing) remove(this.handing, i, done);
      if (owner !== null) remove(this.handoffsByOwner, owner, done);
    };
    done.then(untrack, untrack);
  }

  /** Runs a claim of `owner` once the handoffs it must count have committed. */
  async claim<T>(owner: string, run: () => Promise<T>): Promise<T> {
    const before = [...(this.handoffsByOwner.get(owner) ?? [])];
    bump(this.claims, [owner], 1);
    try {
      if (before.length) await Promise.allSettled(before);
      return await run();
    } finally {
      bump(this.claims, [owner], -1);
    }
  }
}

function bump<K>(counts: Map<K, number>, keys: Iterable<K>, by: 1 | -1): void {
  for (const k of keys) {
    const n = (counts.get(k) ?? 0) + by;
    if (n > 0) counts.set(k, n);
    else counts.delete(k);
  }
}

function add<K>(sets: Map<K, Set<Promise<unknown>>>, key: K, p: Promise<unknown>): void {
  let set = sets.get(key);
  if (!set) sets.set(key, (set = new Set()));
  set.add(p);
}

function remove<K>(sets: Map<K, Set<Promise<unknown>>>, key: K, p: Promise<unknown>): void {
  const set = sets.get(key);
  set?.delete(p);
  if (set && !set.size) sets.delete(key);
}
