/** Change events on the amazons3 element: the shared scenario (scenario.ts) on a real s3rver. */
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { runChangeScenario } from './scenario.js';

const probe = await startS3();
const skip = probe ? false : 's3rver could not start';
await probe?.stop();

let s3: S3TestServer | null = null;
runChangeScenario('amazons3', {
  skip,
  async start() {
    s3 = await startS3();
  },
  async stop() {
    await s3?.stop();
  },
  async storage() {
    return s3!.configFor(await s3!.newBucket());
  },
});
