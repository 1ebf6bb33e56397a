/**
 * The PostgreSQL connection layer of the store: one `pg.Pool` per store whose connections are
 * bound to the store's schema (search_path set in the startup packet, so no query can run
 * before it), BIGINT parsed as JS numbers (ids and millisecond times stay below 2^53), named
 * statements for hot queries, and a transaction helper that retries deadlocks.
 *
 * Time: shared decisions (leases, due times, idempotency windows) use the database clock
 * (`NOW_MS`), so nodes with skewed clocks still agree on when a lease has expired.
 *
 * Round trips: the hot paths (accept, claim, record deliveries; completion after one read) are
 * each ONE autocommit statement — writable CTEs, no BEGIN/COMMIT — because on a busy node every
 * round trip costs latency and CPU on both sides, and every commit a WAL flush. A single statement is atomic, so a
 * crash leaves all of it or none of it, and after a deadlock or serialization failure it is
 * simply run again (`query`). Where a statement must see rows committed after it started (a
 * count taken once advisory locks are held) it calls a VOLATILE plpgsql function, whose own
 * queries take fresh snapshots (see migrations.ts).
 *
 * Durability: commits wait for the WAL flush (synchronous_commit on, PostgreSQL's default): an
 * answered accept survives a database crash, and so do leases and outcomes. An operator who
 * prefers throughput may turn it off for Ferry's role (ALTER ROLE ... SET synchronous_commit =
 * off): a database crash then loses the last few hundred milliseconds of commits — accepted
 * requests already answered, and leases, so jobs may run twice.
 */
import crypto from 'node:crypto';
import pg from 'pg';

/** Milliseconds since the epoch on the database clock, fixed for the whole statement. */
export const NOW_MS = 'floor(extract(epoch from statement_timestamp()) * 1000)::bigint';

/**
 * The database clock when the expression is evaluated: for a start time recorded after the
 * statement waited on instance locks (a job starts once the previous one's completion is seen,
 * which may be after the statement began).
 */
export const CLOCK_MS = 'floor(extract(epoch from clock_timestamp()) * 1000)::bigint';

/**
 * LISTEN/NOTIFY channels: jobs were accepted; notifications became due. Channels are
 * database-wide, so a store in a schema of its own uses `Db.channel(name)`: the name suffixed
 * with its schema, and deployments (or parallel test runs) sharing a database do not wake
 * each other.
 */
export const JOBS_CHANNEL = 'ferry_jobs';
export const NOTIFICATIONS_CHANNEL = 'ferry_notifications';
/**
 * An event was cancelled while its job runs (issue 16): every node's runner checks its running
 * jobs against the store. A hint like the others (the payload is not trusted: channels are
 * database-wide, shared by every schema): the lease heartbeat checks too.
 */
export const CANCELS_CHANNEL = 'ferry_cancels';

/** Something that runs queries: the pool (autocommit) or a client inside a transaction. */
export type Queryable = pg.Pool | pg.PoolClient;

export type Row = Record<string, any>;

/**
 * The advisory-lock class (first key) of the per-instance job locks: advisory locks are
 * database-wide, so it is keyed by schema and deployments sharing a database never wait on
 * each other. The second key is the instance id.
 */
export function instanceLockClass(schema: string | undefined): string {
  return `ferry.claim.${schema ?? 'public'}`;
}

/** Runs `text`; a `name` makes it a named (server-side prepared) statement on each connection. */
export async function run(q: Queryable, text: string, values: unknown[] = [], name?: string): Promise<Row[]> {
  const res = await q.query(name ? { name: `ferry_${name}`, text, values } : { text, values });
  return res.rows;
}

/** Reserves `n` ids of a sequence, ascending: rows written by several statements keep their order. */
export async function nextIds(c: Queryable, sequence: string, n: number): Promise<number[]> {
  const rows = await run(c, `SELECT nextval('${sequence}') AS id FROM generate_series(1, $1)`, [n], `nextval_${sequence}`);
  return rows.map((r) => r.id as number).sort((a, b) => a - b);
}

const INT8_OID = 20;
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  },
} as pg.CustomTypesConfig;

/** A schema name is spliced into SQL and the startup options, so only plain identifiers pass. */
export function checkSchemaName(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`PostgreSQL schema "${schema}" must be a lower-case identifier (letters, digits, _)`);
  }
  return schema;
}

export interface DbOptions {
  url: string;
  schema?: string;
  poolSize?: number;
}

/** SQLSTATEs after which re-running the whole transaction is correct. */
const RETRYABLE = new Set(['40P01', '40001']);

export class Db {
  readonly pool: pg.Pool;
  readonly schema: string | undefined;
  /**
   * The payload of this store's NOTIFYs: its own listener ignores them, since this node wakes
   * its runner and sender directly (and a wake-up would stop their handoffs for nothing).
   */
  readonly wakeToken = crypto.randomBytes(8).toString('hex');
  private readonly notifying = new Map<string, 'sending' | 'again'>();

  constructor(options: DbOptions) {
    this.schema = options.schema === undefined ? undefined : checkSchemaName(options.schema);
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      types,
      application_name: 'ferry',
      // JIT compiles for tens of milliseconds to save microseconds on these short queries
      // (the claim's estimated cost crosses jit_above_cost with a large backlog).
      options: `-c jit=off${this.schema ? ` -c search_path=${this.schema}` : ''}`,
    });
    // An idle connection that dies (server restart) is dropped by the pool; without a listener
    // the 'error' event would crash the process. The next query opens a fresh connection.
    this.pool.on('error', () => {});
  }

  /** A client that is not in the pool (LISTEN needs a long-lived connection of its own). */
  dedicatedClient(): pg.Client {
    // Named after the schema too, so an operator can tell which deployment's listener it is.
    const name = `ferry-listen${this.schema ? `:${this.schema}` : ''}`;
    return new pg.Client({ connectionString: this.pool.options.connectionString, types, application_name: name });
  }

  /**
   * One autocommit statement on a pooled connection. Atomic, so it is re-run after a deadlock or
   * serialization failure (nothing of the failed run remains).
   */
  async query(text: string, values: unknown[] = [], name?: string): Promise<Row[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run(this.pool, text, values, name);
      } catch (e) {
        if (attempt < 5 && RETRYABLE.has((e as { code?: string }).code ?? '')) continue;
        throw e;
      }
    }
  }

  /** Runs `fn` in one transaction (READ COMMITTED); re-runs it after a deadlock. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.pool.connect();
      let broken = false;
      try {
        await c.query('BEGIN');
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {
          broken = true;
        });
        if (attempt < 5 && RETRYABLE.has((e as { code?: string }).code ?? '')) continue;
        throw e;
      } finally {
        c.release(broken);
      }
    }
  }

  /**
   * Sends a NOTIFY; a wake-up is only a hint, so a failure is not the caller's problem. At most
   * one per channel is in flight: asked again meanwhile, one more follows when it is done (each
   * NOTIFY is a transaction of its own, with a WAL flush, and listeners coalesce anyway).
   */
  /** The name of channel `base` for this store's schema (see JOBS_CHANNEL). */
  channel(base: string): string {
    if (!this.schema) return base;
    const named = `${base}__${this.schema}`;
    // Identifiers are at most 63 bytes: a long schema name is replaced by a digest of it.
    return named.length <= 63 ? named : `${base}__${crypto.createHash('sha256').update(this.schema).digest('hex').slice(0, 32)}`;
  }

  notify(base: string): void {
    const channel = this.channel(base);
    const state = this.notifying.get(channel);
    if (state) {
      this.notifying.set(channel, 'again');
      return;
    }
    this.notifying.set(channel, 'sending');
    run(this.pool, 'SELECT pg_notify($1, $2)', [channel, this.wakeToken], 'notify')
      .catch(() => {})
      .finally(() => {
        const again = this.notifying.get(channel) === 'again';
        this.notifying.delete(channel);
        if (again) this.notify(base);
      });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
