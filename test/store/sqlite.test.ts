/**
 * The store conformance suite on SQLite: a fresh database file under os.tmpdir() per test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { runStoreConformance } from './conformance.js';

runStoreConformance(
  'sqlite',
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-store-'));
    const store = new SqliteStore({ file: path.join(dir, 'ferry.db'), durability: 'normal' });
    await store.migrate();
    return {
      store,
      async cleanup() {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
);
