/**
 * The SQLite write lock shared by a node's two connections (store/sqlite/write-lock.ts): a write
 * that finds the lock held waits without blocking the event loop, one thread's waiting writes
 * run in the order they were asked for (and one that fails among them is refused alone), and two
 * threads writing the same file at full speed both succeed with every row kept. The lock's
 * creator (the API thread) goes before the connection that joined it (the runner thread).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { COMMITS, WriteLock } from '../../src/store/sqlite/write-lock.js';

/** Runs `fn` with a migrated store on a fresh file, then closes and removes it. */
async function withStore(fn: (store: SqliteStore, file: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-lock-'));
  const file = path.join(dir, 'ferry.db');
  const store = new SqliteStore({ file, durability: 'normal' });
  try {
    await store.migrate();
    await fn(store, file);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('writes wait for a held lock without blocking the event loop, then run in order', () =>
  withStore(async (store) => {
    const cell = store.writeLock.cell;
    Atomics.store(cell, 0, 1); // another thread holds it
    let settled = 0;
    const writes = [1, 2, 3, 4, 5].map((i) => store.setTags(1, '/ordered', [`v${i}`]).then(() => settled++));
    const timerFired = await new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 20));
    assert.ok(timerFired, 'the event loop kept running');
    assert.equal(settled, 0, 'no write ran while the lock was held');
    Atomics.store(cell, 0, 0);
    Atomics.notify(cell, 0);
    await Promise.all(writes);
    assert.deepEqual((await store.getTags(1, ['/ordered'])).get('/ordered'), ['v5']);
  }));

test('two threads writing one file through the shared lock lose nothing and never fail busy', () =>
  withStore(async (store, file) => {
    const N = 1500;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.module).then(async ({ SqliteStore }) => {
        const store = new SqliteStore({ file: workerData.file, durability: 'normal', checkpoints: false, writeLock: workerData.cell });
        for (let i = 0; i < workerData.n; i++) await store.setTags(1, '/worker/' + i, ['w']);
        await store.close();
        parentPort.postMessage('done');
      });`;
    const module = new URL('../../src/store/sqlite/index.js', import.meta.url).href;
    const worker = new Worker(code, { eval: true, workerData: { module, file, cell: store.writeLock.cell, n: N } });
    const workerDone = new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    for (let i = 0; i < N; i++) await store.setTags(1, '/main/' + i, ['m']);
    await workerDone;
    const paths = [...Array(N).keys()].flatMap((i) => [`/main/${i}`, `/worker/${i}`]);
    assert.equal((await store.getTags(1, paths)).size, 2 * N);
  }));

test('writes queued together run in order; one that fails rolls back alone and only it is refused', () =>
  withStore(async (store) => {
    const before = store.writeLock.cell[0];
    Atomics.store(store.writeLock.cell, 0, 1); // another thread holds it: the three queue up
    const pending = Promise.allSettled([
      store.setTags(1, '/first', ['a']),
      // No organization 999 (foreign key): this write fails between the other two.
      store.createInstance({ organizationId: 999, userId: 999, elementKey: 'localfs', name: 'x', tags: [], configuration: {}, tokenHash: 'h' }),
      store.setTags(1, '/second', ['b']),
    ]);
    Atomics.store(store.writeLock.cell, 0, 0);
    Atomics.notify(store.writeLock.cell, 0);
    const results = await pending;
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /FOREIGN KEY/);
    const tags = await store.getTags(1, ['/first', '/second']);
    assert.deepEqual([tags.get('/first'), tags.get('/second')], [['a'], ['b']]);
    assert.equal(await store.countOrganizations(), 0, 'the failed insert left nothing');
    assert.equal(store.writeLock.cell[0], before, 'the lock is free again');
  }));

test("the lock's creator goes first: a joined connection waiting as long lets it by", async () => {
  const creator = new WriteLock();
  const joined = new WriteLock(creator.cell);
  const order: string[] = [];
  Atomics.store(creator.cell, 0, 1); // a third party holds it
  const writes = [joined.run(() => order.push('joined 1')), joined.run(() => order.push('joined 2'))];
  await new Promise((r) => setTimeout(r, 10)); // the joined connection waits first
  writes.push(creator.run(() => order.push('creator')));
  Atomics.store(creator.cell, 0, 0);
  Atomics.notify(creator.cell, 0);
  await Promise.all(writes);
  assert.deepEqual(order, ['creator', 'joined 1', 'joined 2']);
  assert.deepEqual([...creator.cell.subarray(0, 2)], [0, 0], 'free, nobody waiting');
  assert.ok(creator.cell[COMMITS] >= 2, 'each release advanced the commit counter the checkpointer waits on');
});

test('a joined connection running its queue gives the lock up between two writes when the creator waits', async () => {
  const creator = new WriteLock();
  const joined = new WriteLock(creator.cell);
  const order: string[] = [];
  Atomics.store(creator.cell, 0, 1);
  let creatorWrite: Promise<unknown> | null = null;
  const writes = [
    joined.run(() => {
      order.push('joined 1');
      // The creator asks while the joined connection holds the lock with more queued.
      creatorWrite = Promise.resolve(creator.run(() => order.push('creator')));
    }),
    joined.run(() => order.push('joined 2')),
    joined.run(() => order.push('joined 3')),
  ];
  Atomics.store(creator.cell, 0, 0);
  Atomics.notify(creator.cell, 0);
  await Promise.all(writes);
  await creatorWrite;
  assert.deepEqual(order, ['joined 1', 'creator', 'joined 2', 'joined 3']);
  assert.deepEqual([...creator.cell.subarray(0, 2)], [0, 0]);
});
