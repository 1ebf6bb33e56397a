/**
 * A small pool of SFTP connections for one element (one instance).
 *
 * SFTP multiplexes requests over one channel, so connections are *shared*, not checked out:
 * an operation picks the least busy live connection, and a new one is opened only when every
 * connection is busy and fewer than `max` exist. Sharing avoids the deadlocks of exclusive
 * checkout (a copy reads and writes at once; a download's stream may be held by a slow client)
 * while still spreading heavy traffic over several TCP connections.
 *
 * A connection that nobody uses for `idleMs` is closed. A connection that broke is dropped the
 * moment it is noticed; `run` retries an idempotent operation once on a fresh connection.
 */
import { backendFailed } from '../../errors.js';
import { isConnectionLost } from './errors.js';

/** What the pool needs of a connection. */
export interface Poolable {
  readonly alive: boolean;
  end(): Promise<void>;
}

export interface PoolOptions {
  /** Most connections open at once. */
  max: number;
  /** A connection unused this long is closed. */
  idleMs: number;
}

interface Slot<C> {
  ready: Promise<C>;
  conn?: C;
  /** Operations currently using (or waiting for) this connection. */
  load: number;
  idle?: NodeJS.Timeout;
}

/** One use of a connection; `release` exactly once. */
export interface Lease<C> {
  conn: C;
  /** Gives the connection back; `broken` drops it from the pool. */
  release(broken?: boolean): void;
}

export class ConnectionPool<C extends Poolable> {
  private slots: Slot<C>[] = [];
  private closed = false;

  constructor(
    private readonly connect: () => Promise<C>,
    private readonly options: PoolOptions,
  ) {}

  /** A live connection, opening one when needed. */
  async acquire(): Promise<Lease<C>> {
    // A slot may turn out dead once awaited (it broke while we waited): try another.
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw backendFailed('This SFTP element has been closed.');
      const slot = this.pick();
      slot.load++;
      if (slot.idle) {
        clearTimeout(slot.idle);
        slot.idle = undefined;
      }
      let conn: C;
      try {
        conn = await slot.ready;
      } catch (e) {
        slot.load--;
        this.drop(slot);
        throw e;
      }
      if (!conn.alive && attempt < this.options.max) {
        slot.load--;
        this.drop(slot);
        continue;
      }
      let released = false;
      return {
        conn,
        release: (broken = false) => {
          if (released) return;
          released = true;
          slot.load--;
          if (broken || !conn.alive) this.drop(slot);
          else if (slot.load === 0) this.scheduleIdle(slot);
        },
      };
    }
  }

  /**
   * Runs `fn` on a connection and keeps the connection leased for the caller (a stream or a
   * listing goes on using it). When `fn` fails because the connection was lost (closed under
   * it, not merely slow) and `idempotent` is set, runs it once more on another connection.
   */
  async hold<T>(fn: (conn: C) => Promise<T>, idempotent: boolean): Promise<{ value: T; lease: Lease<C> }> {
    for (let attempt = 0; ; attempt++) {
      const lease = await this.acquire();
      try {
        return { value: await fn(lease.conn), lease };
      } catch (e) {
        const lost = isConnectionLost(e);
        lease.release(lost || !lease.conn.alive);
        // Only a lost connection is retried: a timeout already cost the caller its budget,
        // and a slow server should not get the same work twice.
        if (lost && idempotent && attempt === 0) continue;
        throw e;
      }
    }
  }

  /** `hold`, releasing the connection as soon as `fn` is done. */
  async run<T>(fn: (conn: C) => Promise<T>, idempotent: boolean): Promise<T> {
    const { value, lease } = await this.hold(fn, idempotent);
    lease.release();
    return value;
  }

  /** Ends every connection; the pool refuses work afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((slot) => this.end(slot)));
  }

  /** Number of connections open or opening (for tests and metrics). */
  get size(): number {
    return this.slots.length;
  }

  private pick(): Slot<C> {
    // Forget connections known to be dead before choosing.
    for (const slot of [...this.slots]) {
      if (slot.conn && !slot.conn.alive) this.drop(slot);
    }
    let best: Slot<C> | undefined;
    for (const slot of this.slots) if (!best || slot.load < best.load) best = slot;
    if (best && (best.load === 0 || this.slots.length >= this.options.max)) return best;
    const slot: Slot<C> = { ready: this.connect(), load: 0 };
    slot.ready.then(
      (conn) => {
        slot.conn = conn;
        // Closed or dropped while connecting: nobody will end it otherwise.
        if (!this.slots.includes(slot)) void conn.end();
      },
      () => undefined,
    );
    this.slots.push(slot);
    return slot;
  }

  private scheduleIdle(slot: Slot<C>): void {
    slot.idle = setTimeout(() => {
      if (slot.load === 0) this.drop(slot);
    }, this.options.idleMs);
    slot.idle.unref();
  }

  private drop(slot: Slot<C>): void {
    const at = this.slots.indexOf(slot);
    if (at < 0) return;
    this.slots.splice(at, 1);
    void this.end(slot);
  }

  private async end(slot: Slot<C>): Promise<void> {
    if (slot.idle) clearTimeout(slot.idle);
    try {
      const conn = await slot.ready;
      await conn.end();
    } catch {
      // it never connected, or is gone already
    }
  }
}
