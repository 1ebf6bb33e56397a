/**
 * The Open Connectors compatibility suite against the `sftp` element on a real OpenSSH sshd,
 * with the configuration of the SFTP "Create Instance" page (hostname, port, username,
 * password, home_directory) plus the test server's host key fingerprint. Each instance's home
 * is its own folder under the sshd home (the SFTP tips page: an instance sees only its home).
 */
import { after, before } from 'node:test';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { expectStatus, hubClient } from '../hub/conformance.js';
import { PAGES, runCompat } from './compat.js';

let srv: TestServer;
let sshd: TestSshd | null = null;
const skip = (await whySshdUnavailable()) ?? false;

before(async () => {
  srv = await startTestServer(FAST_ASYNC);
  if (!skip) sshd = await startSshd();
});
after(async () => {
  await srv?.close();
  await sshd?.stop();
});

let homes = 0;
/** A fresh folder in the sshd home, made through a root-level instance. */
async function homeFolder(): Promise<string> {
  const name = `compat-${++homes}`;
  const root = hubClient(srv, await srv.instance('sftp', sshd!.config, `sftp-root-${name}`));
  await expectStatus(await root.call('/folders', { method: 'POST', json: { path: `/${name}` } }), 200);
  return `${sshd!.home}/${name}`;
}

runCompat('sftp', () => srv, async () => ({ ...sshd!.config, home_directory: await homeFolder() }), { skip, createPage: PAGES.sftpCreate });
