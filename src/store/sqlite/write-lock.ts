/**
 * A write lock shared by the connections of one process through a SharedArrayBuffer: the node's
 * own, and its runner thread's, which writes what a replayed request writes itself (document
 * tags, say). SQLite serialises writers itself, but a connection that finds the file locked
 * sleeps in its busy handler for 1 ms, then 2, then 5 …, blocking its event loop; transactions
 * here last tens of microseconds (with two threads writing at full speed, each spent a fifth of
 * its time asleep). Under this lock a thread that finds the other one writing queues its
 * transaction and goes on serving (Atomics.waitAsync) until the other commits. SQLite's own lock
 * stays the authority (and its busy timeout the backstop) for any other writer.
 *
 * A thread's transactions run in the order they were asked for: once one waits, later ones queue
 * behind it, and the queued ones run under one acquisition.
 *
 * The lock's creator (the API thread) goes first: a connection that joined the lock (the runner
 * thread's) takes it only while the creator is not waiting for it, and between two of its queued
 * transactions gives it up when the creator is. An accept batch so waits for at most one of the
 * runner's transactions, never for the runner's whole queue nor for the runner taking the lock
 * again the moment it let go (its transactions hold the lock several times as long in all, and
 * a waiting accept batch holds its requests' connections).
 */
/** Node 20 has it; TypeScript's lib only from es2024. */
const waitAsync = (Atomics as unknown as {
  waitAsync(cell: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: unknown };
}).waitAsync;

/** Index of the commit counter in a WriteLock's cell. */
export const COMMITS = 2;

type Queued = { fn: () => unknown; resolve: (v: any) => void; reject: (e: unknown) => void };

export class WriteLock {
  /**
   * [0]: 0 = free, 1 = held. [1]: how many of the creator's writes wait for it (0 or 1).
   * [COMMITS]: releases so far, by either connection, each after one or more write
   * transactions (it wraps): the checkpointer waits on it instead of waking on a timer
   * (checkpoint-worker.ts).
   */
  readonly cell: Int32Array;
  /** True for the lock's creator; a connection given an existing cell yields to it. */
  private readonly first: boolean;
  private readonly queue: Queued[] = [];
  private depth = 0;

  constructor(cell?: Int32Array) {
    this.first = !cell;
    this.cell = cell ?? new Int32Array(new SharedArrayBuffer(4 * 3));
  }

  /**
   * Runs `fn` holding the lock: at once when it is free (the common case, synchronously), else
   * once the other thread releases it. Re-entrant: `fn` may itself call `run`.
   */
  run<T>(fn: () => T): T | Promise<T> {
    if (this.depth > 0) return fn();
    if (this.queue.length === 0 && !this.yields() && this.tryAcquire()) {
      try {
        return this.held(fn);
      } finally {
        this.release();
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve, reject });
      if (this.queue.length === 1) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await this.acquire();
      try {
        for (let item = this.queue.shift(); item; item = this.queue.shift()) {
          try {
            item.resolve(this.held(item.fn));
          } catch (e) {
            item.reject(e);
          }
          if (this.yields()) break;
        }
      } finally {
        this.release();
      }
    }
  }

  /** Waits until this thread holds the lock, announcing the wait when it is the creator. */
  private async acquire(): Promise<void> {
    if (!this.first) {
      for (;;) {
        const waiting = Atomics.load(this.cell, 1);
        if (waiting !== 0) await this.waitWhile(1, waiting);
        else if (this.tryAcquire()) return;
        else await this.waitWhile(0, 1);
      }
    }
    Atomics.add(this.cell, 1, 1);
    try {
      while (!this.tryAcquire()) await this.waitWhile(0, 1);
    } finally {
      Atomics.sub(this.cell, 1, 1);
      Atomics.notify(this.cell, 1);
    }
  }

  /** Resolves once cell[index] is no longer `value` (or after 50 ms: the caller looks again). */
  private async waitWhile(index: number, value: number): Promise<void> {
    const wait = waitAsync(this.cell, index, value, 50);
    if (!wait.async) return;
    // A pending waitAsync does not keep Node's event loop alive: without this timer a process
    // with nothing else to do would exit with the write still queued.
    const alive = setTimeout(() => {}, 100);
    await wait.value;
    clearTimeout(alive);
  }

  /** Whether this connection must let the creator's waiting writes go first. */
  private yields(): boolean {
    return !this.first && Atomics.load(this.cell, 1) !== 0;
  }

  private held<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  private tryAcquire(): boolean {
    return Atomics.compareExchange(this.cell, 0, 0, 1) === 0;
  }

  private release(): void {
    Atomics.store(this.cell, 0, 0);
    Atomics.notify(this.cell, 0);
    // Waking a waiting checkpointer costs a message to its thread; without a waiter (it is
    // between its interval's start and its checkpoint) a notify finds nobody and costs nothing.
    Atomics.add(this.cell, COMMITS, 1);
    Atomics.notify(this.cell, COMMITS);
  }
}
