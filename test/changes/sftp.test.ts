/** Change events on the sftp element: the shared scenario (scenario.ts) on a real OpenSSH sshd. */
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { runChangeScenario } from './scenario.js';

const skip = (await whySshdUnavailable()) ?? false;
let sshd: TestSshd | null = null;

runChangeScenario('sftp', {
  skip,
  async start() {
    sshd = await startSshd();
  },
  async stop() {
    await sshd?.stop();
  },
  // The whole sshd home is this scenario's: one instance pair per run.
  async storage() {
    return sshd!.config;
  },
});
