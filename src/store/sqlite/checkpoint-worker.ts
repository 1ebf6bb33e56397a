/**
 * Worker thread of the SQLite checkpointer (checkpoint.ts): its own connection to the database
 * copies committed WAL frames back into the main file (`wal_checkpoint(PASSIVE)`: never waits
 * for, and never blocks, the node's writer), so the node's event loop never pays for a
 * checkpoint or its fsync at commit time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointerOptions {
  file: string;
  intervalMs: number;
}

const { file, intervalMs } = workerData as CheckpointerOptions;
const db = new Database(file);
db.pragma('busy_timeout = 0');
db.pragma('synchronous = NORMAL');

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or locked (e.g. another process holds the database): the next round tries again,
    // and the node's own auto-checkpoint (a larger threshold) remains as a backstop.
  }
}, intervalMs);

parentPort?.on('message', (message: unknown) => {
  if (message !== 'close') return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
