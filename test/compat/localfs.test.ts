/**
 * The Open Connectors compatibility suite against the `localfs` element.
 */
import { after, before } from 'node:test';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { runCompat } from './compat.js';

let srv: TestServer;

before(async () => {
  srv = await startTestServer(FAST_ASYNC);
});
after(async () => {
  await srv?.close();
});

let roots = 0;
runCompat('localfs', () => srv, async () => ({ root: `compat-${++roots}` }));
