import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dropStoreOf, startTestServer, storeEnv, testBackend } from '../helpers/server.js';

const run = promisify(execFile);
const cli = new URL('../../src/cli.js', import.meta.url).pathname;

test('rotate-master-key re-encrypts every secret; instances keep working; the old key is gone', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-rotate-'));
  try {
    let srv = await startTestServer({}, dir);
    const inst = await srv.instance('localfs', { root: 'r', 'event.notification.signature.key': 'rotating-signature-key' });
    await srv.close();
    const oldKey = fs.readFileSync(path.join(dir, 'master.key'), 'utf8').trim();
    // The SQLite file's bytes (on PostgreSQL the store is not in the data dir).
    const before = testBackend() === 'sqlite' ? fs.readFileSync(path.join(dir, 'ferry.db')) : Buffer.alloc(0);

    const { stdout } = await run(process.execPath, [cli, 'rotate-master-key'], {
      env: { ...process.env, ...storeEnv(dir), FERRY_DATA_DIR: dir, FERRY_LOG_LEVEL: 'silent' },
    });
    assert.match(stdout, /Re-encrypted 1 secret value\(s\) of 1 instance\(s\)/);
    const keys = fs.readFileSync(path.join(dir, 'master.key'), 'utf8').trim().split('\n');
    assert.equal(keys.length, 1, 'the old key is dropped once every value is re-encrypted');
    assert.notEqual(keys[0], oldKey);
    assert.equal((fs.statSync(path.join(dir, 'master.key')).mode & 0o777).toString(8), '600');
    assert.ok(!before.includes(Buffer.from('rotating-signature-key')));

    srv = await startTestServer({}, dir);
    try {
      const res = await srv.api('/hubs/documents/ping', { headers: { authorization: inst.auth } });
      assert.equal(res.status, 200);
      const got: any = await (await srv.api(`/instances/${inst.id}`)).json();
      assert.equal(got.configuration['event.notification.signature.key'], '********');
      // The server decrypts the secret with the new key (the sender signs with it).
      const stored = await srv.ferry.store.getInstance(got.user ? 1 : 1, inst.id);
      assert.ok(stored);
      assert.ok(stored.configuration['event.notification.signature.key'].startsWith('enc:v1:'));
    } finally {
      await srv.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await dropStoreOf(dir);
  }
});

test('rotate-master-key also re-encrypts previous signature keys kept for a key rotation (issue 24)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-rotate-retired-'));
  try {
    let srv = await startTestServer({}, dir);
    const inst = await srv.instance('localfs', { root: 'r', 'event.notification.signature.key': 'first-signature-key' });
    const patched = await srv.api(`/instances/${inst.id}`, {
      method: 'PATCH',
      json: { configuration: { 'event.notification.signature.key': 'second-signature-key' } },
    });
    assert.equal(patched.status, 200);
    const sealedBefore = (await srv.ferry.store.getInstance(1, inst.id))!.retiredSignatureKeys;
    assert.equal(sealedBefore.length, 1);
    await srv.close();

    const { stdout } = await run(process.execPath, [cli, 'rotate-master-key'], {
      env: { ...process.env, ...storeEnv(dir), FERRY_DATA_DIR: dir, FERRY_LOG_LEVEL: 'silent' },
    });
    assert.match(stdout, /Re-encrypted 2 secret value\(s\) of 1 instance\(s\)/);

    srv = await startTestServer({}, dir);
    try {
      const stored = (await srv.ferry.store.getInstance(1, inst.id))!;
      assert.equal(stored.retiredSignatureKeys.length, 1);
      assert.notEqual(stored.retiredSignatureKeys[0].key, sealedBefore[0].key, 're-encrypted');
      assert.equal(stored.retiredSignatureKeys[0].until.getTime(), sealedBefore[0].until.getTime(), 'the overlap is kept');
      // The new master key opens it: the sender still signs with both keys.
      const { MasterKey } = await import('../../src/identity/crypto.js');
      const key = MasterKey.fromBase64(fs.readFileSync(path.join(dir, 'master.key'), 'utf8').trim());
      assert.equal(key.decrypt(stored.retiredSignatureKeys[0].key), 'first-signature-key');
    } finally {
      await srv.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await dropStoreOf(dir);
  }
});
