/**
 * Entry point of a node's runner thread (see async/runner-thread.ts): a Ferry node without API
 * that runs the node's runner and sender, adopts the jobs its node's thread hands over, and
 * reports its runner's slots back once per event-loop turn.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { FromRunnerThread, RunnerThreadData, SlotReport, ToRunnerThread } from './async/runner-thread.js';
import { asBuffer } from './async/runner-thread.js';
import { nameThisThread } from './thread-name.js';
import { startFerry } from './server.js';
import { metrics } from './observability/metrics.js';
import { warmTreePool } from './elements/localfs/tree-pool.js';

const port = parentPort!;
const data = workerData as RunnerThreadData;
nameThisThread('ferry-runner');
if (data.config.runnerNice > 0) {
  try {
    // On Linux a thread has its own nice value: 0 here means this thread, not the process.
    os.setPriority(0, data.config.runnerNice);
  } catch {
    // Not permitted or not supported here: the thread runs at the node's priority.
  }
}
const ferry = await startFerry(data.config, { thread: { writeLock: data.writeLock } });
const { runner, sender } = ferry.worker!;
const send = (m: FromRunnerThread) => port.postMessage(m);

let report: SlotReport | null = null;
function pending(): SlotReport {
  if (!report) {
    report = { launched: [], finished: [] };
    setImmediate(() => {
      send({ type: 'slots', ...report!, progress: runner.progress() });
      report = null;
    });
  }
  return report;
}
runner.watch = {
  launched: (instanceId) => pending().launched.push(instanceId),
  finished: (instanceId) => pending().finished.push(instanceId),
  backlog: (value) => (pending().backlog = value),
  renewed: () => void pending(),
};

port.on('message', (m: ToRunnerThread) => {
  if (m.type === 'adopt') runner.adopt(m.jobs.map((job) => ({ ...job, body: job.body && asBuffer(job.body) })));
  else if (m.type === 'wake') (m.what === 'jobs' ? runner : m.what === 'changes' ? ferry.poller : sender)?.wake();
  else if (m.type === 'cancel') runner.cancel(m.eventId);
  else if (m.type === 'pause') {
    runner.pause(m.value);
    sender.pause(m.value);
  }
  else if (m.type === 'probe') {
    const families = metrics.enabled ? metrics.familiesAsJson() : Promise.resolve([]);
    void families.then((f) => send({ type: 'probe', id: m.id, runner: runner.progress(), families: f }));
  }
  else if (m.type === 'drain') {
    void ferry.drain(m.deadline).then((report) => send({ type: 'drained', report }));
  }
  else if (m.type === 'stop') {
    void ferry.close().then(() => {
      send({ type: 'stopped' });
      port.close();
    });
  }
});
send({ type: 'ready', owner: runner.owner });
// The thread's own local file system workers (pools are per thread) boot now, in the
// background, as the node thread's do on the first ping: a folder read or copy that a job makes
// — an export's walk first of all — then never waits a few hundred milliseconds for one.
setImmediate(warmTreePool);
