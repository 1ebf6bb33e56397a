/**
 * Group commit for every write of one SQLite connection, under a write lock shared by the
 * connections of one process (the node's own and its runner thread's, through a
 * SharedArrayBuffer).
 *
 * Every write transaction a thread asks for in one event-loop turn — accepted requests,
 * completed jobs, delivery records, claims — runs in ONE SQLite transaction at the end of the
 * turn, each in its own savepoint: a failing one rolls back alone, the others commit together,
 * and every caller hears back only after that COMMIT (if the COMMIT itself fails, all of them get
 * the error and nothing of the batch is stored). One COMMIT writes each dirty page to the WAL
 * once, however many of the batch's writes touched it; before, accept, complete and record each
 * paid their own BEGIN, COMMIT and page writes.
 *
 * The lock: SQLite serialises writers itself, but a connection that finds the file locked sleeps
 * in its busy handler for 1 ms, then 2, then 5 …, blocking its event loop. A thread that finds the
 * other one writing here waits with Atomics.waitAsync and goes on serving meanwhile. SQLite's own
 * lock stays the authority (and its busy timeout the backstop) for any other writer.
 */

/** Node 20 has it; TypeScript's lib only from es2024. */
const waitAsync = (Atomics as unknown as {
  waitAsync(cell: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: unknown };
}).waitAsync;

type Queued = { fn: () => unknown; resolve: (v: any) => void; reject: (e: unknown) => void };

export class WriteLock {
  /** 0 = free, 1 = held. */
  readonly cell: Int32Array;
  private queue: Queued[] = [];
  private scheduled = false;
  private draining: Promise<void> | null = null;
  private depth = 0;

  /**
   * `transaction(run)` runs `run` in one write transaction (BEGIN IMMEDIATE … COMMIT); the
   * queued functions open their own nested transactions (savepoints) inside it.
   */
  constructor(
    cell: Int32Array | undefined,
    private readonly transaction: (run: () => void) => void,
  ) {
    this.cell = cell ?? new Int32Array(new SharedArrayBuffer(4));
  }

  /**
   * Runs `fn` (which opens its own transaction) in this turn's batch and resolves with its
   * result once the batch has committed. Called from inside a batch, `fn` runs at once.
   */
  run<T>(fn: () => T): T | Promise<T> {
    if (this.depth > 0) return fn();
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.draining = this.drain().finally(() => (this.draining = null));
        });
      }
    });
  }

  /** Resolves once everything queued so far has committed (or failed). */
  async idle(): Promise<void> {
    while (this.scheduled || this.draining) {
      await (this.draining ?? new Promise((resolve) => setImmediate(resolve)));
    }
  }

  private async drain(): Promise<void> {
    while (!this.tryAcquire()) {
      const wait = waitAsync(this.cell, 0, 1, 50);
      if (!wait.async) continue;
      // A pending waitAsync does not keep Node's event loop alive: without this timer a
      // process with nothing else to do would exit with the writes still queued.
      const alive = setTimeout(() => {}, 100);
      await wait.value;
      clearTimeout(alive);
    }
    const batch = this.queue;
    this.queue = [];
    this.scheduled = false;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.depth++;
      this.transaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: item.fn() });
          } catch (e) {
            outcomes.push({ ok: false, value: e });
          }
        }
      });
    } catch (e) {
      // BEGIN or COMMIT failed: nothing of the batch is stored.
      for (const item of batch) item.reject(e);
      return;
    } finally {
      this.depth--;
      this.release();
    }
    batch.forEach((item, i) => (outcomes[i].ok ? item.resolve(outcomes[i].value) : item.reject(outcomes[i].value)));
  }

  private tryAcquire(): boolean {
    return Atomics.compareExchange(this.cell, 0, 0, 1) === 0;
  }

  private release(): void {
    Atomics.store(this.cell, 0, 0);
    Atomics.notify(this.cell, 0);
  }
}
