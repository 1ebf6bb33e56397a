/**
 * The SQLite checkpointer (store/sqlite/checkpoint.ts) waits for commits instead of waking on a
 * timer: what a node commits still reaches the database file while it runs (the WAL does not
 * just grow until the node closes), from either connection of the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/index.js';

async function until(done: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

test('commits are checkpointed into the database file while the store is open, the joined connection\'s too', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-checkpoint-'));
  const file = path.join(dir, 'ferry.db');
  const store = new SqliteStore({ file, durability: 'normal', checkpointMs: 20 });
  const joined = new SqliteStore({ file, durability: 'normal', checkpoints: false, writeLock: store.writeLock.cell });
  try {
    await store.migrate();
    const size = () => fs.statSync(file).size;
    assert.ok(await until(() => size() > 4096), `the migrations never reached ${file} (size ${size()})`);
    const before = size();
    // Enough rows from the joined connection (the runner thread's, in a node) for new pages.
    for (let i = 0; i < 200; i++) await joined.createOrganization({ name: `org-${i}-${'x'.repeat(200)}`, secretHash: `h${i}` });
    assert.ok(await until(() => size() > before), `the joined connection's commits never reached the file (still ${size()} bytes)`);
    assert.equal(await store.countOrganizations(), 200);
  } finally {
    await joined.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
