/**
 * Issue 21: SFTP host keys are trusted on first use. An instance configured without a pinned
 * key records the key its server presents at the first connection (stored with the instance,
 * in `sftp.host.fingerprint`), and afterwards a server presenting another key — here the real
 * sshd restarted with a new host key — is refused with an error that names the new key and the
 * setting to change; once the configuration pins the new key, the instance works again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { FAST_ASYNC, ORG_SECRET, startTestServer, type TestServer } from '../helpers/server.js';
import { hashSecret } from '../../src/identity/secrets.js';

const skip = (await whySshdUnavailable()) ?? false;
const PIN = 'sftp.host.fingerprint';

describe('sftp host keys: trust on first use', { skip }, () => {
  let srv: TestServer;
  let sshd: TestSshd;
  before(async () => {
    srv = await startTestServer(FAST_ASYNC);
    sshd = (await startSshd())!;
  });
  after(async () => {
    await srv?.close();
    await sshd?.stop();
  });

  /** The sshd configuration without a pinned key. */
  const unpinned = () => {
    const { [PIN]: _pin, ...rest } = sshd.config;
    return rest;
  };
  const ping = async (auth: string) => {
    const res = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: auth } });
    return { status: res.status, body: (await res.json()) as any };
  };
  const pinOf = async (id: number) => ((await (await srv.api(`/instances/${id}`)).json()) as any).configuration[PIN];

  it('records the key at the first connection, refuses a changed key, and accepts a newly pinned one', async () => {
    const inst = await srv.instance('sftp', unpinned(), 'tofu');
    assert.equal(await pinOf(inst.id), sshd.fingerprint, 'the key seen when the instance was created is stored with it');
    assert.equal((await ping(inst.auth)).status, 200);

    const before = sshd.fingerprint;
    const rotated = await sshd.rotateHostKey();
    assert.notEqual(rotated, before);
    const refused = await ping(inst.auth);
    assert.equal(refused.status, 502, JSON.stringify(refused.body));
    assert.match(refused.body.message, new RegExp(rotated.replace(/[+/]/g, '\\$&')));
    assert.match(refused.body.message, /sftp\.host\.fingerprint/);
    assert.equal(await pinOf(inst.id), before, 'a changed key never replaces the recorded one by itself');

    // The operator checks the new key and pins it: the instance works again.
    const patch = await srv.api(`/instances/${inst.id}/configuration/${PIN}`, { method: 'PATCH', json: { propertyValue: rotated } });
    assert.equal(patch.status, 200, await patch.text());
    assert.equal((await ping(inst.auth)).status, 200);
  });

  it('an instance stored without a key (created before trust on first use) records it at its next connection', async () => {
    const inst = await srv.instance('sftp', unpinned(), 'legacy');
    // As an instance created by an earlier version: no key stored.
    const org = await srv.ferry.store.findOrganizationBySecretHash(hashSecret(ORG_SECRET));
    const stored = await srv.ferry.store.getInstance(org!.id, inst.id);
    assert.ok(stored);
    const { [PIN]: _pin, ...rest } = stored.configuration;
    await srv.ferry.store.updateInstance(stored.organizationId, inst.id, { configuration: rest });
    assert.equal(await pinOf(inst.id), null, 'unset, the documented configuration key reads null');

    assert.equal((await ping(inst.auth)).status, 200);
    let pin: string | undefined;
    for (let i = 0; i < 100 && !pin; i++) {
      pin = await pinOf(inst.id);
      if (!pin) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(pin, sshd.fingerprint);
  });
});
