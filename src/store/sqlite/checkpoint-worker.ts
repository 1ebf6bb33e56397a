/**
 * Worker thread of the SQLite checkpointer (checkpoint.ts): its own connection to the database
 * copies committed WAL frames back into the main file (`wal_checkpoint(PASSIVE)`: never waits
 * for, and never blocks, the node's writer), so the node's event loop never pays for a
 * checkpoint or its fsync at commit time.
 *
 * It checkpoints only after commits: it waits (Atomics.waitAsync, no timer) until the write
 * lock's commit counter moves, then lets `intervalMs` pass so that one checkpoint covers every
 * commit of that interval, checkpoints, and waits again. An idle node so never wakes it; under
 * load it checkpoints once per interval, as a timer would.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { nameThisThread } from '../../thread-name.js';
import { COMMITS } from './write-lock.js';

export interface CheckpointerOptions {
  file: string;
  intervalMs: number;
  /** The node's write lock cell, whose COMMITS counter every write transaction advances. */
  commits: Int32Array;
}

/** Node 20 has it; TypeScript's lib only from es2024. */
const waitAsync = (Atomics as unknown as {
  waitAsync(cell: Int32Array, index: number, value: number): { async: boolean; value: Promise<unknown> | unknown };
}).waitAsync;

const { file, intervalMs, commits } = workerData as CheckpointerOptions;
nameThisThread('ferry-checkpoint');
const db = new Database(file);
db.pragma('busy_timeout = 0');
db.pragma('synchronous = NORMAL');

let closed = false;
let timer: NodeJS.Timeout | null = null;

async function run(): Promise<void> {
  // Commits made before this thread started (migrations, say) are waiting for a checkpoint too.
  let seen = 0;
  while (!closed) {
    const wait = waitAsync(commits, COMMITS, seen);
    if (wait.async) await wait.value;
    if (closed) return;
    await new Promise<void>((resolve) => (timer = setTimeout(resolve, intervalMs)));
    timer = null;
    if (closed) return;
    // Commits from here on need the next checkpoint; those before it are covered by this one.
    seen = Atomics.load(commits, COMMITS);
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy or locked (e.g. another process holds the database): the next round tries again,
      // and the node's own auto-checkpoint (a larger threshold) remains as a backstop.
    }
  }
}

void run();

parentPort?.on('message', (message: unknown) => {
  if (message !== 'close') return;
  closed = true;
  if (timer) clearTimeout(timer);
  db.close();
  parentPort?.close();
});
