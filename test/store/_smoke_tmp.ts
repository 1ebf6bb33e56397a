import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { freshSchema, pgTestUrl } from '../helpers/postgres.js';
const url = (await pgTestUrl())!;
const fs = freshSchema(url);
const s = new PostgresStore({ url, schema: fs.schema, poolSize: 1 });
await s.migrate();
const c = new pg.Client(url); await c.connect();
const tables = (await c.query(`SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'ferry_migrations'`, [fs.schema])).rows.map((r) => `${fs.schema}.${r.tablename}`);
for (let i = 0; i < 3; i++) {
  let t = Date.now();
  await c.query(`TRUNCATE ${tables.join(', ')} RESTART IDENTITY`); const tr = Date.now() - t; t = Date.now();
  await c.query(`BEGIN; ${tables.map((x) => `DELETE FROM ${x};`).join(' ')} COMMIT;`); const del = Date.now() - t;
  console.log({ tr, del });
}
await c.end(); await s.close(); await fs.drop();
