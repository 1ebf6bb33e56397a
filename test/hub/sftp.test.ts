/**
 * The documents-hub conformance suite against the `sftp` element on a real OpenSSH sshd started
 * by this file, plus what only SFTP has: sshd restarted mid-test → the next hub request
 * succeeds on a new connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { download, expectStatus, hubClient, q, runHubConformance, upload, type Hub } from './conformance.js';

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

/** Each instance gets its own folder under the sshd home so suites never share objects. */
let instances = 0;
function configIn(sub: string): Record<string, string> {
  return { ...sshd!.config, home_directory: `${sshd!.home}/${sub}` };
}

runHubConformance('sftp', () => srv, async () => configIn(await homeFolder(`conformance-${++instances}`)), { skip });

/** Creates a folder in the sshd home (owned by the sftp user) through a root-level instance. */
async function homeFolder(name: string): Promise<string> {
  const root = hubClient(srv, await srv.instance('sftp', sshd!.config, `sftp-root-${name}`));
  await expectStatus(await root.call('/folders', { method: 'POST', json: { path: `/${name}` } }), 200);
  return name;
}

describe('hub: sftp specifics', { skip }, () => {
  let hub: Hub;
  before(async () => {
    hub = hubClient(srv, await srv.instance('sftp', configIn(await homeFolder('specifics')), 'sftp-specifics'));
  });

  test('sshd restarted mid-test → the next hub request succeeds', async () => {
    await upload(hub, '/r/before.txt', 'before restart');
    await sshd!.restart();
    assert.equal((await download(hub, '/r/before.txt')).toString(), 'before restart');
    await upload(hub, '/r/after.txt', 'after restart');
    const listed = await expectStatus(await hub.call(`/folders/contents${q('/r')}`), 200);
    assert.deepEqual(listed.map((o: any) => o.name), ['after.txt', 'before.txt']);
    // Twice in a row, with concurrent requests in flight on the pool.
    await sshd!.restart();
    const results = await Promise.all(Array.from({ length: 4 }, () => hub.call(`/files${q('/r/after.txt')}`)));
    for (const res of results) {
      assert.equal(res.status, 200);
      assert.equal(Buffer.from(await res.arrayBuffer()).toString(), 'after restart');
    }
  });
});
