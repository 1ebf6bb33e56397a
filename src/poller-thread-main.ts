/**
 * Entry point of a node's poller thread (see changes/poller-thread.ts): lowers its own OS
 * priority (FERRY_POLLER_NICE), opens the store as a second connection of the node, and runs
 * the change poller until told to stop.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { FromPollerThread, PollerThreadData, ToPollerThread } from './changes/poller-thread.js';
import { Poller } from './changes/poller.js';
import { createEgressPolicy } from './async/egress.js';
import { MasterKey } from './identity/crypto.js';
import { InstanceService } from './instances/service.js';
import { createLogger } from './server.js';
import { openStore } from './store/index.js';
import type { Store } from './store/store.js';

const port = parentPort!;
const data = workerData as PollerThreadData;
if (data.config.pollerNice > 0) {
  try {
    // On Linux a thread has its own nice value: 0 here means this thread, not the process.
    os.setPriority(0, data.config.pollerNice);
  } catch {
    // Not permitted or not supported here: the thread runs at the node's priority.
  }
}
const send = (m: FromPollerThread) => port.postMessage(m);
const config = data.config;
const log = createLogger(config);
const store = await openStore(config, { writeLock: data.writeLock });
const instances = new InstanceService(store, MasterKey.load(config.masterKey, config.dataDir), config, createEgressPolicy(config.egressAllow));
const poller = new Poller(store, instances, config, log, () => send({ type: 'notified' }));
const wakeups = store as Store & { onWake?: (channel: 'changes', fn: () => void) => () => void };
const unsubscribe = wakeups.onWake?.('changes', () => poller.wake());

port.on('message', (m: ToPollerThread) => {
  if (m.type === 'wake') poller.wake();
  else if (m.type === 'stop') {
    void (async () => {
      unsubscribe?.();
      await poller.stop();
      await instances.closeAll();
      await store.close();
      send({ type: 'stopped' });
      port.close();
    })();
  }
});
poller.start();
send({ type: 'ready' });
