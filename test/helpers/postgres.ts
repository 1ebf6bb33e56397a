/**
 * PostgreSQL for tests: the server at 127.0.0.1:5432 (trust auth, database `test`), or the one
 * `FERRY_TEST_DATABASE_URL` names. Each test takes a fresh schema so runs never see each other's
 * rows; the store creates the schema at migrate(), the drop function removes it.
 */
import crypto from 'node:crypto';
import pg from 'pg';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The test database URL. */
export function pgUrl(): string {
  return process.env.FERRY_TEST_DATABASE_URL || DEFAULT_URL;
}

/** Why PostgreSQL tests are skipped (one line). */
export function pgSkipReason(): string {
  return `PostgreSQL is not reachable at ${pgUrl().replace(/\/\/[^@/]*@/, '//')} (set FERRY_TEST_DATABASE_URL or start it)`;
}

let probe: Promise<string | null> | undefined;

/** The test database URL when a connection succeeds, else null (tests then skip). */
export function pgTestUrl(): Promise<string | null> {
  probe ??= (async () => {
    const url = pgUrl();
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return url;
    } catch {
      return null;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return probe;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface TestSchema {
  /** A schema name no other run uses (the store creates it at migrate()). */
  schema: string;
  /**
   * Deletes every row of every table but the migrations ledger: a migrated schema as good as
   * new, much faster than dropping and migrating again (DDL is slow on a busy machine).
   */
  empty(): Promise<void>;
  /** Drops the schema with everything in it. */
  drop(): Promise<void>;
}

export function freshSchema(url: string): TestSchema {
  const schema = `ferry_test_${process.pid}_${crypto.randomBytes(5).toString('hex')}`;
  return {
    schema,
    empty: () =>
      withClient(url, async (client) => {
        // Newest table first: a table is created after the tables its foreign keys point to.
        const { rows } = await client.query(
          `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'ferry_migrations' ORDER BY c.oid DESC`,
          [schema],
        );
        if (!rows.length) return;
        const deletes = rows.map((r) => `DELETE FROM ${schema}.${r.relname};`).join(' ');
        await client.query(`BEGIN; ${deletes} COMMIT;`);
      }),
    drop: () =>
      withClient(url, async (client) => {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }),
  };
}
