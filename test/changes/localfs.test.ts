/** Change events on the localfs element: the shared scenario (scenario.ts) on a local folder. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runChangeScenario } from './scenario.js';

let base = '';
let n = 0;
runChangeScenario('localfs', {
  skip: false,
  async start() {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-changes-localfs-'));
  },
  async stop() {
    fs.rmSync(base, { recursive: true, force: true });
  },
  async storage() {
    return { root: `watched-${++n}` };
  },
  // The watcher and the writer share one FERRY_LOCALFS_BASE: the same folders.
  env: () => ({ FERRY_LOCALFS_BASE: base }),
});
