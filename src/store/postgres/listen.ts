/**
 * LISTEN/NOTIFY wake-ups for the PostgreSQL store. A NOTIFY is only a latency hint: it lets an
 * idle runner or sender look now instead of at its next poll, and pollers still poll, because
 * a notification can be lost (the listening connection drops, a node was not listening yet).
 *
 * One dedicated connection (LISTEN cannot share pooled connections) is opened when the first
 * handler subscribes and closed when the last one leaves. When it drops it reconnects with
 * backoff, and after a reconnect every handler is called once: whatever was notified while it
 * was away is worth a look.
 *
 * Notifications carrying `ownToken` as payload come from this very store and are ignored: the
 * node that accepted or completed wakes its own runner and sender directly.
 */
import type pg from 'pg';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;

export class WakeListener {
  private readonly handlers = new Map<string, Set<() => void>>();
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | null = null;
  /** The LISTEN/UNLISTEN commands sent on the open connection, chained (see command). */
  private commands: Promise<void> = Promise.resolve();
  private closed = false;
  private everConnected = false;

  /** `newClient` makes a new, unconnected client for each (re)connection. */
  constructor(
    private readonly newClient: () => pg.Client,
    private readonly ownToken?: string,
  ) {}

  /** Calls `fn` whenever `channel` is notified; returns the unsubscribe function. */
  listen(channel: string, fn: () => void): () => void {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name "${channel}"`);
    if (this.closed) return () => {};
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      this.command(`LISTEN ${channel}`);
    }
    set.add(fn);
    if (!this.client && !this.connecting && !this.timer) this.connect();
    return () => {
      const s = this.handlers.get(channel);
      if (!s?.delete(fn) || s.size) return;
      this.handlers.delete(channel);
      if (!this.handlers.size) this.stop();
      else this.command(`UNLISTEN ${channel}`);
    };
  }

  /**
   * LISTEN or UNLISTEN on the open connection, one after the other: subscriptions made in one
   * turn (a node subscribes to four channels at once) would otherwise overlap on one client,
   * which pg deprecates (and pg 9 refuses).
   */
  private command(sql: string): void {
    const client = this.client;
    if (!client) return;
    this.commands = this.commands.then(() => client.query(sql)).then(
      () => undefined,
      () => this.drop(client),
    );
  }

  private connect(): void {
    this.connecting = this.open().finally(() => {
      this.connecting = null;
    });
  }

  private async open(): Promise<void> {
    const client = this.newClient();
    client.on('error', () => this.drop(client));
    client.on('end', () => this.drop(client));
    client.on('notification', (msg) => {
      if (this.ownToken === undefined || msg.payload !== this.ownToken) this.fire(msg.channel);
    });
    try {
      await client.connect();
      // Handlers may subscribe to new channels while this runs: loop until none is missing.
      const listened = new Set<string>();
      for (;;) {
        const missing = [...this.handlers.keys()].filter((c) => !listened.has(c));
        if (!missing.length) break;
        for (const channel of missing) {
          await client.query(`LISTEN ${channel}`);
          listened.add(channel);
        }
      }
    } catch {
      await client.end().catch(() => {});
      this.scheduleReconnect();
      return;
    }
    if (this.closed || !this.handlers.size) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.retryMs = RETRY_MIN_MS;
    if (this.everConnected) for (const channel of this.handlers.keys()) this.fire(channel);
    this.everConnected = true;
  }

  private fire(channel: string): void {
    for (const fn of this.handlers.get(channel) ?? []) {
      try {
        fn();
      } catch {
        // A handler's failure is its own business; the others still get their wake-up.
      }
    }
  }

  /** The connection failed: forget it and come back later if anyone still listens. */
  private drop(client: pg.Client | null = this.client): void {
    if (client && client !== this.client) return;
    this.client = null;
    client?.end().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || !this.handlers.size || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.client && !this.connecting) this.connect();
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** Nobody listens any more: close the connection; the next subscriber starts afresh. */
  private stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.everConnected = false;
    this.retryMs = RETRY_MIN_MS;
    const client = this.client;
    this.client = null;
    client?.end().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.connecting;
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => {});
  }
}
