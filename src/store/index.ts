/**
 * Chooses the store implementation: PostgreSQL when a database URL is configured, else SQLite
 * under the data dir. Migrations run here, before anything else touches the store.
 */
import path from 'node:path';
import type { Config } from '../config.js';
import type { Store } from './store.js';
import { SqliteStore } from './sqlite/index.js';

/**
 * `writeLock`: the runner thread opens the API thread's SQLite file as a second connection,
 * sharing its write lock and leaving checkpoints to it (see SqliteOptions).
 */
export async function openStore(config: Config, options: { writeLock?: Int32Array } = {}): Promise<Store> {
  let store: Store;
  if (config.databaseUrl) {
    const { PostgresStore } = await import('./postgres/index.js');
    store = new PostgresStore({ url: config.databaseUrl, schema: config.databaseSchema ?? undefined });
  } else {
    store = new SqliteStore({
      file: path.join(config.dataDir, 'ferry.db'),
      durability: config.durability,
      checkpoints: !options.writeLock,
      writeLock: options.writeLock,
      checkpointMs: config.checkpointMs,
    });
  }
  await store.migrate();
  return store;
}
