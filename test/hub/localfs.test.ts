/**
 * The documents-hub conformance suite against the `localfs` element: one Ferry test server
 * whose localfs base is its own temp data dir.
 */
import { after, before } from 'node:test';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { runHubConformance } from './conformance.js';

let srv: TestServer;

before(async () => {
  srv = await startTestServer(FAST_ASYNC);
});
after(async () => {
  await srv?.close();
});

runHubConformance('localfs', () => srv, async () => ({ root: 'hub-conformance' }));
