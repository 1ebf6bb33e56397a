/**
 * The PostgreSQL connection layer of the store: one `pg.Pool` per store whose connections are
 * bound to the store's schema (search_path set in the startup packet, so no query can run
 * before it), BIGINT parsed as JS numbers (ids and millisecond times stay below 2^53), named
 * statements for hot queries, and a transaction helper that retries deadlocks.
 *
 * Time: shared decisions (leases, due times, idempotency windows) use the database clock
 * (`NOW_MS`), so nodes with skewed clocks still agree on when a lease has expired.
 */
import pg from 'pg';

/** Milliseconds since the epoch on the database clock, fixed for the whole statement. */
export const NOW_MS = 'floor(extract(epoch from statement_timestamp()) * 1000)::bigint';

/** LISTEN/NOTIFY channels: jobs were accepted; notifications became due. */
export const JOBS_CHANNEL = 'ferry_jobs';
export const NOTIFICATIONS_CHANNEL = 'ferry_notifications';

/** Something that runs queries: the pool (autocommit) or a client inside a transaction. */
export type Queryable = pg.Pool | pg.PoolClient;

export type Row = Record<string, any>;

/** Runs `text`; a `name` makes it a named (server-side prepared) statement on each connection. */
export async function run(q: Queryable, text: string, values: unknown[] = [], name?: string): Promise<Row[]> {
  const res = await q.query(name ? { name: `ferry_${name}`, text, values } : { text, values });
  return res.rows;
}

/**
 * Reserves `n` ids of a sequence, ascending, with the statement's database time: rows can then
 * be written in one multi-row INSERT whose values (a notification body) depend on their ids.
 */
export async function nextIds(c: pg.PoolClient, sequence: string, n: number): Promise<{ ids: number[]; now: number }> {
  const rows = await run(
    c,
    `SELECT nextval('${sequence}') AS id, ${NOW_MS} AS now FROM generate_series(1, $1)`,
    [n],
    `nextval_${sequence}`,
  );
  return { ids: rows.map((r) => r.id as number).sort((a, b) => a - b), now: rows[0].now };
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

  query(text: string, values: unknown[] = [], name?: string): Promise<Row[]> {
    return run(this.pool, text, values, name);
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

  /** Sends a NOTIFY; a wake-up is only a hint, so a failure is not the caller's problem. */
  notify(channel: string): void {
    this.pool.query(`NOTIFY ${channel}`).catch(() => {});
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
