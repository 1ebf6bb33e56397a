/**
 * The Open Connectors compatibility suite against the `amazons3` element on s3rver, with the
 * configuration of the Amazon S3 "Create Instance" page (`document.tagging` as a JSON boolean)
 * plus the endpoint of the test store.
 *
 * s3rver implements neither bucket versioning nor ListObjectVersions (it answers
 * NotImplemented), so here every file has one current revision, as on a bucket without
 * versioning; listing real versions of a versioned bucket is written against AWS's API and not
 * exercised by this suite (README, Compatibility).
 */
import { after, before } from 'node:test';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { PAGES, runCompat } from './compat.js';

let srv: TestServer;
let s3: S3TestServer | null = null;
const probe = await startS3();
const skip = probe ? false : 's3rver could not start';
await probe?.stop();

before(async () => {
  srv = await startTestServer(FAST_ASYNC);
  s3 = await startS3();
});
after(async () => {
  await srv?.close();
  await s3?.stop();
});

runCompat(
  'amazons3',
  () => srv,
  async () => ({ 'document.tagging': true, ...s3!.configFor(await s3!.newBucket()) }),
  { skip, createPage: PAGES.s3Create },
);
