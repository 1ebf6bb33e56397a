/**
 * Entry point of a node's runner thread (see async/runner-thread.ts): a Ferry node without API,
 * runner or sender whose executor answers the main thread's replays and webhook attempts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FromRunnerThread, RunnerThreadData, ToRunnerThread } from './async/runner-thread.js';
import type { DeliveryOutcome } from './async/deliver.js';
import type { Replayed } from './async/executor.js';
import { asBuffer } from './async/runner-thread.js';
import { startFerry } from './server.js';

const port = parentPort!;
const data = workerData as RunnerThreadData;
const ferry = await startFerry(data.config, { thread: { writeLock: data.writeLock } });
const send = (m: FromRunnerThread) => port.postMessage(m);
let inFlight = 0;
let stopping = false;

async function stop(): Promise<void> {
  await ferry.close();
  send({ type: 'stopped' });
  port.close();
}

function settle(id: number, work: Promise<Replayed | DeliveryOutcome>): void {
  inFlight++;
  work
    .then(
      (value) => send({ type: 'done', id, value }),
      (e: unknown) => send({ type: 'failed', id, message: e instanceof Error ? e.message : String(e) }),
    )
    .finally(() => {
      inFlight--;
      if (stopping && inFlight === 0) void stop();
    });
}

port.on('message', (m: ToRunnerThread) => {
  if (m.type === 'replay') settle(m.id, ferry.executor.replay({ ...m.job, body: m.job.body && asBuffer(m.job.body) }));
  else if (m.type === 'deliver') settle(m.id, ferry.executor.deliver(m.target, m.timeoutMs));
  else if (m.type === 'stop') {
    stopping = true;
    if (inFlight === 0) void stop();
  }
});
send({ type: 'ready' });
