/**
 * Slots a runner or sender reserves while a store hands it freshly written work (see Handoff in
 * store/async.ts). A `take` that answers true holds a slot until the store call returns: then
 * `settle` keeps the slots of what was really handed off and gives back the rest (all of them
 * when the transaction failed). A refused `take` means work was left in the store for a claim.
 * SlotCounts is the tally of taken slots that the runner, the sender and the node thread's copy of
 * a runner thread's slots (ThreadSlots) keep.
 */
import type { Handoff } from '../store/async.js';

export class Reservations<T, K> implements Handoff<T> {
  /** Keys of the slots reserved, in order. */
  readonly keys: K[] = [];
  /** How many offers were refused (left for a claim). */
  refused = 0;

  constructor(
    readonly owner: string,
    readonly leaseMs: number,
    /** Reserves a slot for the item and returns its key, or null when there is no room. */
    private readonly reserve: (item: T) => K | null,
  ) {}

  take(item: T): boolean {
    const key = this.reserve(item);
    if (key === null) {
      this.refused++;
      return false;
    }
    this.keys.push(key);
    return true;
  }

  /**
   * Matches the handed-off items to the reserved slots (by key, in order); calls `release` for
   * every reserved slot nothing was handed off for.
   */
  settle<H>(handed: H[], keyOf: (h: H) => K, release: (key: K) => void): void {
    const left = new Map<K, number>();
    for (const k of this.keys) left.set(k, (left.get(k) ?? 0) + 1);
    for (const h of handed) {
      const k = keyOf(h);
      const n = left.get(k) ?? 0;
      if (n > 0) left.set(k, n - 1);
    }
    for (const [k, n] of left) for (let i = 0; i < n; i++) release(k);
  }
}

/** Slots taken per key (an instance, a callback origin) and in all; a key at zero is forgotten. */
export class SlotCounts<K> {
  private readonly byKey = new Map<K, number>();
  total = 0;

  of(key: K): number {
    return this.byKey.get(key) ?? 0;
  }

  take(key: K): void {
    this.total++;
    this.byKey.set(key, this.of(key) + 1);
  }

  give(key: K): void {
    this.total--;
    const n = this.of(key) - 1;
    if (n <= 0) this.byKey.delete(key);
    else this.byKey.set(key, n);
  }

  /** Keys with `limit` or more slots taken. */
  atLeast(limit: number): K[] {
    const keys: K[] = [];
    for (const [key, n] of this.byKey) if (n >= limit) keys.push(key);
    return keys;
  }
}
