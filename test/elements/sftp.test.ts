/**
 * The sftp element: the shared conformance suite against a real OpenSSH sshd on loopback
 * (test/helpers/sshd.ts), then what only SFTP has — password, key and encrypted-key logins,
 * rejected credentials, host key pinning, symbolic links on the server leading out of the home,
 * a server restart under a live pool, a 200 MB stream with flat memory, concurrent uploads,
 * temp-then-rename writes, timeouts and the pool's lifecycle.
 *
 * Skips (one line) when sshd is absent or we are not root; CI installs it with
 * .ci/install-sshd.sh.
 */
import { createEgressPolicy } from '../../src/async/egress.js';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, chown, stat as fsStat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import type { Element, ElementContext, Entry } from '../../src/elements/element.js';
import { sftp } from '../../src/elements/sftp/index.js';
import { SftpElement } from '../../src/elements/sftp/sftp.js';
import { ConnectionPool } from '../../src/elements/sftp/pool.js';
import { connectionLost } from '../../src/elements/sftp/errors.js';
import { parseSftpSettings } from '../../src/elements/sftp/settings.js';
import { backendTimeout, isFerryError, unauthenticated } from '../../src/errors.js';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { readAll, rejectsWith, runElementConformance, streamOf } from './conformance.js';

const server = await startSshd();
const skip = server === null ? `no test sshd: ${(await whySshdUnavailable()) ?? 'it failed to start'}` : false;
const sshd = server as TestSshd;
// The test server is on loopback: this policy allows everything (the elements refuse to run without one).
const egress = createEgressPolicy(['0.0.0.0/0', '::/0']);
const context = (backendTimeoutMs = 10_000): ElementContext => ({ localfsBase: os.tmpdir(), backendTimeoutMs, egress });

after(async () => {
  await server?.stop();
});

/** A fresh folder in the server home, owned by the SFTP user, as a home_directory. */
async function freshHome(): Promise<string> {
  const dir = await mkdtemp(path.join(sshd.home, 'inst-'));
  const owner = await fsStat(sshd.home);
  await chown(dir, owner.uid, owner.gid);
  return dir;
}

function element(config: Record<string, string> = {}, timeoutMs?: number): Element {
  return sftp.create({ ...sshd.config, ...config }, context(timeoutMs));
}

async function paths(entries: AsyncIterable<Entry>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of entries) out.push(e.path);
  return out.sort();
}

/** Asserts that no message or provider message of `e` contains `secret`. */
function assertNoSecret(e: unknown, secret: string): void {
  assert.ok(isFerryError(e));
  assert.ok(!e.message.includes(secret), 'secret in message');
  assert.ok(!(e.providerMessage ?? '').includes(secret), 'secret in providerMessage');
}

runElementConformance(
  'sftp conformance',
  async () => {
    const home = await freshHome();
    const el = element({ home_directory: home });
    await el.ping();
    return { element: el, cleanup: () => rm(home, { recursive: true, force: true }) };
  },
  { skip },
);

describe('sftp definition and configuration', () => {
  it('is element 3, key sftp, with its keys and the common ones', () => {
    assert.equal(sftp.id, 3);
    assert.equal(sftp.key, 'sftp');
    assert.equal(sftp.name, 'SFTP');
    assert.equal(sftp.hub, 'documents');
    const keys = new Map(sftp.configuration.map((c) => [c.key, c]));
    assert.equal(keys.get('hostname')?.required, true);
    assert.equal(keys.get('username')?.required, true);
    assert.equal(keys.get('port')?.default, '22');
    for (const secret of ['password', 'private_key', 'private_key_passphrase', 'event.notification.signature.key']) {
      assert.equal(keys.get(secret)?.secret, true, secret);
    }
    for (const plain of ['hostname', 'port', 'username', 'home_directory', 'sftp.host.fingerprint']) {
      assert.equal(keys.get(plain)?.secret, false, plain);
    }
    assert.ok(keys.has('event.notification.callback.url'));
  });

  const base = { hostname: 'sftp.example.com', username: 'alice', password: 'pw' };
  const refusals: [string, Record<string, string>, string][] = [
    ['missing hostname', { ...base, hostname: '' }, 'hostname'],
    ['missing username', { ...base, username: ' ' }, 'username'],
    ['neither password nor key', { hostname: 'h', username: 'u' }, 'password'],
    ['port 0', { ...base, port: '0' }, 'port'],
    ['port text', { ...base, port: 'ssh' }, 'port'],
    ['port 70000', { ...base, port: '70000' }, 'port'],
    ['relative home', { ...base, home_directory: 'data' }, 'home_directory'],
    ['key not base64', { ...base, private_key: '-----BEGIN OPENSSH PRIVATE KEY-----' }, 'private_key'],
    ['key not a PEM', { ...base, private_key: Buffer.from('hello').toString('base64') }, 'private_key'],
    ['fingerprint as MD5', { ...base, 'sftp.host.fingerprint': 'MD5:aa:bb' }, 'sftp.host.fingerprint'],
    ['fingerprint too short', { ...base, 'sftp.host.fingerprint': 'SHA256:abc' }, 'sftp.host.fingerprint'],
  ];
  for (const [title, config, key] of refusals) {
    it(`refuses ${title}, naming ${key}`, () => {
      assert.throws(
        () => sftp.create(config, context(1000)),
        (e: unknown) => isFerryError(e, 'invalid') && e.message.includes(`'${key}'`),
      );
    });
  }

  it('parses defaults and strips a trailing slash from the home', () => {
    const s = parseSftpSettings({ ...base, home_directory: '/srv/data/' });
    assert.equal(s.port, 22);
    assert.equal(s.homeDirectory, '/srv/data');
    assert.equal(parseSftpSettings(base).homeDirectory, null);
  });

  it('create() does not connect', () => {
    // Port 1 on a documentation address: connecting would fail, creating must not try.
    const el = sftp.create({ ...base, hostname: '192.0.2.1', port: '1' }, context());
    assert.ok(el);
  });
});

describe('sftp keys (needs sshd)', { skip }, () => {
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');

  it('an encrypted key without passphrase names private_key_passphrase', () => {
    assert.throws(
      () => element({ password: '', private_key: b64(sshd.encryptedPrivateKeyPem) }),
      (e: unknown) => isFerryError(e, 'invalid') && e.message.includes("'private_key_passphrase'"),
    );
  });

  it('a PKCS#8 key is refused with a hint, naming private_key', () => {
    const { privateKey } = generateKeyPairSync('ed25519', {
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    assert.throws(
      () => element({ private_key: b64(privateKey) }),
      (e: unknown) => isFerryError(e, 'invalid') && e.message.includes("'private_key'") && /ssh-keygen/.test(e.message),
    );
  });

  it('a wrong passphrase names private_key_passphrase and is not echoed', () => {
    try {
      element({ password: '', private_key: b64(sshd.encryptedPrivateKeyPem), private_key_passphrase: 'not-the-passphrase' });
      assert.fail('should refuse');
    } catch (e) {
      assert.ok(isFerryError(e, 'invalid') && e.message.includes("'private_key_passphrase'"));
      assertNoSecret(e, 'not-the-passphrase');
    }
  });
});

describe('sftp authentication and host keys (needs sshd)', { skip }, () => {
  it('password login works and the default home is the login folder', async () => {
    const el = element({ home_directory: '' });
    try {
      await el.ping();
      const name = `default-home-${randomBytes(3).toString('hex')}.txt`;
      await el.write(`/${name}`, streamOf(Buffer.from('at home')));
      assert.equal(await readFile(path.join(sshd.home, name), 'utf8'), 'at home');
      await el.remove(`/${name}`);
    } finally {
      await el.close();
    }
  });

  it('private key login works (OpenSSH ed25519 key, no password)', async () => {
    const el = element({ password: '', private_key: Buffer.from(sshd.privateKeyPem).toString('base64') });
    try {
      await el.ping();
      assert.equal((await el.stat('/'))?.directory, true);
    } finally {
      await el.close();
    }
  });

  it('passphrase-protected key login works (encrypted PEM RSA key)', async () => {
    const el = element({
      password: '',
      private_key: Buffer.from(sshd.encryptedPrivateKeyPem).toString('base64'),
      private_key_passphrase: sshd.privateKeyPassphrase,
    });
    try {
      await el.ping();
      const written = await el.write('/by-rsa.txt', streamOf(Buffer.from('rsa')));
      assert.equal(written.size, 3);
      await el.remove('/by-rsa.txt');
    } finally {
      await el.close();
    }
  });

  it('a wrong password is unauthenticated, saying the server rejected the credentials', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const el = element({ password: wrong });
    try {
      await assert.rejects(el.ping(), (e: unknown) => {
        assert.ok(isFerryError(e, 'unauthenticated'), String(e));
        assert.match(e.message, /SFTP server .*rejected the credentials/);
        assertNoSecret(e, wrong);
        assertNoSecret(e, sshd.password);
        return true;
      });
      // Every operation reports the same, none hangs.
      await rejectsWith(el.stat('/'), 'unauthenticated');
    } finally {
      await el.close();
    }
  });

  it('a wrong key is unauthenticated', async () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const el = element({ password: '', private_key: Buffer.from(privateKey).toString('base64') });
    try {
      await rejectsWith(el.ping(), 'unauthenticated');
    } finally {
      await el.close();
    }
  });

  it('a matching host fingerprint pin connects; without padding or with it', async () => {
    for (const pin of [sshd.fingerprint, `${sshd.fingerprint}=`]) {
      const el = element({ 'sftp.host.fingerprint': pin });
      try {
        await el.ping();
      } finally {
        await el.close();
      }
    }
  });

  it('a mismatching host fingerprint refuses to connect, with a clear error', async () => {
    const other = `SHA256:${createHash('sha256').update('another host').digest('base64').replace(/=+$/, '')}`;
    const el = element({ 'sftp.host.fingerprint': other });
    try {
      await assert.rejects(el.ping(), (e: unknown) => {
        assert.ok(isFerryError(e, 'backend'), String(e));
        assert.match(e.message, /sftp\.host\.fingerprint/);
        assert.ok(e.message.includes(sshd.fingerprint), 'names the key the server presented');
        assertNoSecret(e, sshd.password);
        return true;
      });
      await rejectsWith(el.write('/never.txt', streamOf(Buffer.from('x'))), 'backend');
      assert.equal(existsSync(path.join(sshd.home, 'never.txt')), false);
    } finally {
      await el.close();
    }
  });

  it('a closed port is a backend failure with the provider message', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const el = element({ port: String(port) });
    try {
      await assert.rejects(el.ping(), (e: unknown) => {
        assert.ok(isFerryError(e, 'backend'), String(e));
        assert.match(e.providerMessage ?? '', /ECONNREFUSED/);
        assertNoSecret(e, sshd.password);
        return true;
      });
    } finally {
      await el.close();
    }
  });

  it('a server that never speaks SSH times out as backend_timeout', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const el = element({ port: String((silent.address() as net.AddressInfo).port) }, 500);
    const started = Date.now();
    try {
      await rejectsWith(el.ping(), 'backend_timeout');
      assert.ok(Date.now() - started < 5000, 'took too long');
    } finally {
      await el.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a home_directory that does not exist is invalid at ping, naming the key', async () => {
    const el = element({ home_directory: path.join(sshd.home, 'no-such-folder') });
    try {
      await assert.rejects(el.ping(), (e: unknown) => isFerryError(e, 'invalid') && e.message.includes("'home_directory'"));
    } finally {
      await el.close();
    }
  });
});

describe('sftp symbolic links never lead out of the home (needs sshd)', { skip }, () => {
  let home: string;
  let outside: string;
  let el: Element;
  const secret = 'outside secret bytes';

  before(async () => {
    home = await freshHome();
    outside = await mkdtemp(path.join(os.tmpdir(), 'ferry-sftp-outside-'));
    await writeFile(path.join(outside, 'secret.txt'), secret);
    // The SFTP user could write here through a link if Ferry followed it.
    const owner = await fsStat(home);
    await chown(outside, owner.uid, owner.gid);
    await writeFile(path.join(home, 'real.txt'), 'mine');
    await mkdir(path.join(home, 'folder'));
    await chown(path.join(home, 'folder'), owner.uid, owner.gid);
    await symlink('/etc', path.join(home, 'etc'));
    await symlink(outside, path.join(home, 'to-outside'));
    await symlink(path.join(outside, 'secret.txt'), path.join(home, 'secret-link.txt'));
    await symlink('/etc/passwd', path.join(home, 'folder', 'passwd'));
    await symlink(path.join(home, 'folder'), path.join(home, 'inner-link'));
    el = element({ home_directory: home });
    await el.ping();
  });
  after(async () => {
    await el?.close();
    await rm(outside, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  async function assertOutsideUntouched(): Promise<void> {
    assert.deepEqual(await readdir(outside), ['secret.txt']);
    assert.equal(await readFile(path.join(outside, 'secret.txt'), 'utf8'), secret);
    assert.equal(existsSync('/etc/ferry-sftp-test'), false);
    assert.ok((await readFile('/etc/passwd', 'utf8')).length > 0);
  }

  it('list and walk do not show links', async () => {
    assert.deepEqual(await paths(el.list('/')), ['/folder', '/real.txt']);
    assert.deepEqual(await paths(el.list('/folder')), []);
    assert.deepEqual(await paths(el.walk!('/')), ['/folder', '/real.txt']);
  });

  it('stat treats links, and anything behind them, as absent', async () => {
    for (const p of ['/etc', '/etc/passwd', '/to-outside', '/to-outside/secret.txt', '/secret-link.txt', '/folder/passwd', '/inner-link']) {
      assert.equal(await el.stat(p), null, p);
    }
  });

  it('cannot be read or listed through', async () => {
    for (const p of ['/etc/passwd', '/etc/hostname', '/secret-link.txt', '/to-outside/secret.txt', '/folder/passwd']) {
      await rejectsWith(el.read(p), 'not_found');
    }
    for (const p of ['/etc', '/to-outside', '/inner-link']) {
      await rejectsWith(paths(el.list(p)), 'not_found');
      await rejectsWith(paths(el.walk!(p)), 'not_found');
    }
  });

  it('cannot be written through', async () => {
    for (const p of ['/etc/ferry-sftp-test', '/to-outside/new.txt', '/to-outside/secret.txt', '/to-outside/a/b.txt']) {
      await rejectsWith(el.write(p, streamOf(Buffer.from('planted'))), 'forbidden');
    }
    for (const p of ['/etc/ferry-sftp-test', '/to-outside/newdir', '/to-outside/a/b']) {
      await rejectsWith(el.mkdir(p), 'forbidden');
    }
    await rejectsWith(el.copy('/real.txt', '/to-outside/planted.txt'), 'forbidden');
    await rejectsWith(el.move('/real.txt', '/etc/planted.txt'), 'forbidden');
    await assertOutsideUntouched();
    assert.equal(await readFile(path.join(home, 'real.txt'), 'utf8'), 'mine');
  });

  it('cannot be removed, moved or copied from', async () => {
    for (const p of ['/etc', '/etc/passwd', '/to-outside', '/to-outside/secret.txt', '/secret-link.txt']) {
      await rejectsWith(el.remove(p), 'not_found');
    }
    await rejectsWith(el.copy('/to-outside', '/stolen'), 'not_found');
    await rejectsWith(el.copy('/etc/passwd', '/stolen.txt'), 'not_found');
    await rejectsWith(el.move('/to-outside/secret.txt', '/stolen.txt'), 'not_found');
    assert.equal(existsSync(path.join(home, 'stolen')), false);
    assert.equal(existsSync(path.join(home, 'stolen.txt')), false);
    await assertOutsideUntouched();
  });

  it('writing over a link replaces the link, not its target', async () => {
    await el.write('/secret-link.txt', streamOf(Buffer.from('replaced')));
    assert.equal((await readAll(await el.read('/secret-link.txt'))).toString(), 'replaced');
    await assertOutsideUntouched();
    await rm(path.join(home, 'secret-link.txt'));
    await symlink(path.join(outside, 'secret.txt'), path.join(home, 'secret-link.txt'));
  });

  it('removing and copying a folder that holds links touch the links only', async () => {
    await el.write('/holder/own.txt', streamOf(Buffer.from('own')));
    await symlink(outside, path.join(home, 'holder', 'link-dir'));
    await symlink(path.join(outside, 'secret.txt'), path.join(home, 'holder', 'link-file'));
    await el.copy('/holder', '/holder-copy');
    assert.deepEqual(await paths(el.walk!('/holder-copy')), ['/holder-copy/own.txt']);
    await el.remove('/holder');
    await el.remove('/holder-copy');
    assert.equal(existsSync(path.join(home, 'holder')), false);
    await assertOutsideUntouched();
  });

  it('a home_directory given through a link works, confined to its real folder', async () => {
    const linkHome = path.join(outside, '..', `ferry-link-home-${randomBytes(3).toString('hex')}`);
    await symlink(home, linkHome);
    const viaLink = element({ home_directory: linkHome });
    try {
      await viaLink.ping();
      assert.equal((await readAll(await viaLink.read('/real.txt'))).toString(), 'mine');
      await rejectsWith(viaLink.read('/etc/passwd'), 'not_found');
    } finally {
      await viaLink.close();
      await rm(linkHome, { force: true });
    }
  });
});

describe('sftp resilience, streaming and the pool (needs sshd)', { skip }, () => {
  let home: string;
  before(async () => {
    home = await freshHome();
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('after sshd restarts, the next operation succeeds on a new connection', async () => {
    const el = element({ home_directory: home });
    try {
      await el.write('/before.txt', streamOf(Buffer.from('before restart')));
      await sshd.restart();
      // The pooled connection died with the server; nothing of that reaches the caller.
      assert.equal((await el.stat('/before.txt'))?.size, 14);
      assert.equal((await readAll(await el.read('/before.txt'))).toString(), 'before restart');
      await el.write('/after.txt', streamOf(Buffer.from('after restart')));
      await sshd.restart();
      await el.mkdir('/made-after-second-restart');
      assert.deepEqual(await paths(el.list('/')), ['/after.txt', '/before.txt', '/made-after-second-restart']);
    } finally {
      await el.close();
    }
  });

  it('a restart in the middle of a download fails that stream cleanly; the next read works', async () => {
    const el = element({ home_directory: home });
    const data = randomBytes(8 * 1024 * 1024);
    try {
      await el.write('/long.bin', streamOf(data));
      const stream = await el.read('/long.bin');
      let received = 0;
      const drained = new Promise<unknown>((resolve) => {
        stream.on('error', resolve);
        stream.on('end', () => resolve(null));
      });
      // Take the first chunk, pause, restart the server under the open handle, then resume.
      await new Promise((resolve) => stream.once('data', (chunk: Buffer) => resolve((received += chunk.length))));
      stream.pause();
      await sshd.restart();
      stream.on('data', (chunk: Buffer) => (received += chunk.length));
      stream.resume();
      const failure = await drained;
      // Bytes already read ahead may still arrive, but never the whole file, and the error is ours.
      assert.ok(received < data.length, 'the stream cannot have completed');
      assert.ok(isFerryError(failure, 'backend'), `expected a backend error, got ${String(failure)}`);
      assert.ok((await readAll(await el.read('/long.bin'))).equals(data));
    } finally {
      await el.close();
    }
  });

  it('a connection killed between operations is replaced at once', async () => {
    const el = new SftpElement(parseSftpSettings({ ...sshd.config, home_directory: home }), context(), { max: 1, idleMs: 30_000 });
    try {
      await el.ping();
      // Kill the server's side while no request is in flight, then ask at once: either the
      // pool already saw the close and drops the connection, or stat meets it and retries.
      await sshd.restart();
      assert.equal((await el.stat('/'))?.directory, true);
      assert.ok(el.connections <= 1);
    } finally {
      await el.close();
    }
  });

  it('a server that stops answering times out as backend_timeout; a fresh connection takes over', async () => {
    const el = new SftpElement(parseSftpSettings({ ...sshd.config, home_directory: home }), context(700), { max: 1, idleMs: 30_000 });
    try {
      await el.write('/frozen.txt', streamOf(Buffer.from('still here')));
      const thaw = await sshd.freeze();
      try {
        const started = Date.now();
        await rejectsWith(el.stat('/frozen.txt'), 'backend_timeout');
        assert.ok(Date.now() - started < 3000, 'the timeout took too long');
        // The hung connection was torn down; the next operation opens a new one.
        assert.equal((await readAll(await el.read('/frozen.txt'))).toString(), 'still here');
      } finally {
        await thaw();
      }
    } finally {
      await el.close();
    }
  });

  it('streams 200 MB up and down with flat memory', async (t) => {
    const el = element({ home_directory: home }, 60_000);
    const size = 200 * 1024 * 1024;
    const chunk = 256 * 1024;
    // Content that differs per chunk, produced on the fly and hashed as it goes up.
    const expected = createHash('sha256');
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < size / chunk; i++) {
          const block = randomBytes(chunk);
          expected.update(block);
          yield block;
        }
      })(),
    );

    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 25);
    const started = Date.now();
    try {
      const written = await el.write('/big.bin', source);
      t.diagnostic(`upload ${Date.now() - started} ms`);
      assert.equal(written.size, size);
      const hash = createHash('sha256');
      let bytes = 0;
      await pipeline(
        await el.read('/big.bin'),
        new Writable({
          write(data: Buffer, _enc, done) {
            bytes += data.length;
            hash.update(data);
            done();
          },
        }),
      );
      assert.equal(bytes, size);
      assert.equal(hash.digest('hex'), expected.digest('hex'));
    } finally {
      clearInterval(sampler);
      await el.remove('/big.bin').catch(() => undefined);
      await el.close();
    }
    const growth = peak - baseline;
    t.diagnostic(`round trip ${Date.now() - started} ms, RSS growth ${Math.round(growth / 1048576)} MB`);
    assert.ok(growth < 80 * 1024 * 1024, `RSS grew by ${Math.round(growth / 1048576)} MB`);
  });

  it('20 concurrent uploads to one folder all land intact, over at most 4 connections', async () => {
    const el = new SftpElement(parseSftpSettings({ ...sshd.config, home_directory: home }), context());
    try {
      const files = Array.from({ length: 20 }, (_, i) => ({ path: `/many/file-${i}.bin`, data: randomBytes(300_000 + i * 1000) }));
      let most = 0;
      const watch = setInterval(() => (most = Math.max(most, el.connections)), 5);
      const written = await Promise.all(files.map((f) => el.write(f.path, streamOf(f.data, 32 * 1024))));
      clearInterval(watch);
      assert.ok(most <= 4, `${most} connections`);
      for (const [i, f] of files.entries()) assert.equal(written[i].size, f.data.length);
      for (const f of files) assert.ok((await readAll(await el.read(f.path))).equals(f.data), `${f.path} differs`);
      assert.deepEqual(await paths(el.list('/many')), files.map((f) => f.path).sort());
      assert.deepEqual((await readdir(path.join(home, 'many'))).length, 20, 'no temp file left');
    } finally {
      await el.close();
    }
  });

  it('a failed upload leaves the old file intact and no temp file behind', async () => {
    const el = element({ home_directory: home });
    try {
      await el.write('/atomic/doc.txt', streamOf(Buffer.from('old version')));
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(100_000, 1));
          this.destroy(new Error('client went away'));
        },
      });
      await assert.rejects(el.write('/atomic/doc.txt', failing), /client went away/);
      await assert.rejects(el.write('/atomic/new.txt', new Readable({ read() { this.destroy(new Error('gone')); } })), /gone/);
      assert.equal(await readFile(path.join(home, 'atomic', 'doc.txt'), 'utf8'), 'old version');
      assert.deepEqual(await readdir(path.join(home, 'atomic')), ['doc.txt']);
    } finally {
      await el.close();
    }
  });

  it('temp files of an upload in progress are not listed', async () => {
    const el = element({ home_directory: home });
    try {
      await mkdir(path.join(home, 'hidden'));
      await writeFile(path.join(home, 'hidden', '.ferry-upload-0123456789abcdef.tmp'), 'partial');
      await writeFile(path.join(home, 'hidden', 'shown.txt'), 'x');
      assert.deepEqual(await paths(el.list('/hidden')), ['/hidden/shown.txt']);
    } finally {
      await el.close();
    }
  });

  it('storage reports the server file system through statvfs', async () => {
    const el = element({ home_directory: home });
    try {
      const s = await el.storage();
      assert.ok(s.total !== null && s.total > 0);
      assert.ok(s.used !== null && s.used >= 0 && s.used <= s.total);
      assert.equal(s.shared, null);
    } finally {
      await el.close();
    }
  });

  it('error messages name instance paths, never server paths', async () => {
    const el = element({ home_directory: home });
    try {
      await assert.rejects(el.read('/no/such/file.txt'), (e: unknown) => {
        assert.ok(isFerryError(e, 'not_found'));
        assert.ok(!e.message.includes(home), e.message);
        assert.match(e.message, /\/no\/such\/file\.txt/);
        return true;
      });
    } finally {
      await el.close();
    }
  });

  it('idle connections close after the idle time; close() ends all and refuses work', async () => {
    const el = new SftpElement(parseSftpSettings({ ...sshd.config, home_directory: home }), context(), { max: 4, idleMs: 200 });
    await Promise.all(Array.from({ length: 6 }, () => el.stat('/')));
    assert.ok(el.connections >= 1 && el.connections <= 4);
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(el.connections, 0);
    await el.stat('/');
    assert.equal(el.connections, 1);
    await el.close();
    assert.equal(el.connections, 0);
    await rejectsWith(el.stat('/'), 'backend');
  });

  it('an abandoned download releases its connection when destroyed', async () => {
    const el = new SftpElement(parseSftpSettings({ ...sshd.config, home_directory: home }), context(), { max: 1, idleMs: 30_000 });
    try {
      await el.write('/dl.bin', streamOf(randomBytes(2 * 1024 * 1024)));
      for (let i = 0; i < 5; i++) {
        const stream = await el.read('/dl.bin');
        await new Promise((resolve) => stream.once('data', resolve));
        stream.destroy();
      }
      assert.equal((await el.stat('/dl.bin'))?.size, 2 * 1024 * 1024);
    } finally {
      await el.close();
    }
  });
});

describe('sftp connection pool (pure logic, fake connections)', () => {
  class Fake {
    static opened = 0;
    readonly id = ++Fake.opened;
    alive = true;
    ended = false;
    async end() {
      this.ended = true;
      this.alive = false;
    }
  }
  const pool = (max = 4, idleMs = 30_000, connect = async () => new Fake()) => new ConnectionPool<Fake>(connect, { max, idleMs });

  it('retries an idempotent operation once when its connection was lost', async () => {
    const p = pool();
    const seen: number[] = [];
    const result = await p.run(async (conn) => {
      seen.push(conn.id);
      if (seen.length === 1) {
        conn.alive = false;
        throw connectionLost(new Error('socket closed'));
      }
      return 'done';
    }, true);
    assert.equal(result, 'done');
    assert.equal(seen.length, 2);
    assert.notEqual(seen[0], seen[1], 'the retry ran on another connection');
    assert.equal(p.size, 1, 'the lost connection was dropped');
    await p.close();
  });

  it('does not retry a non-idempotent operation, a timeout, or a second loss', async () => {
    const p = pool();
    let calls = 0;
    await rejectsWith(p.run(async () => {
      calls++;
      throw connectionLost(new Error('gone'));
    }, false), 'backend');
    assert.equal(calls, 1);
    calls = 0;
    await rejectsWith(p.run(async () => {
      calls++;
      throw backendTimeout('slow');
    }, true), 'backend_timeout');
    assert.equal(calls, 1);
    calls = 0;
    await rejectsWith(p.run(async () => {
      calls++;
      throw connectionLost(new Error('gone again'));
    }, true), 'backend');
    assert.equal(calls, 2);
    await p.close();
  });

  it('shares connections, opens at most max, and spreads load', async () => {
    const p = pool(3);
    const leases = await Promise.all(Array.from({ length: 9 }, () => p.acquire()));
    assert.equal(p.size, 3);
    const perConn = new Map<number, number>();
    for (const l of leases) perConn.set(l.conn.id, (perConn.get(l.conn.id) ?? 0) + 1);
    assert.deepEqual([...perConn.values()], [3, 3, 3]);
    for (const l of leases) l.release();
    // An idle connection is reused rather than a new one opened.
    const again = await p.acquire();
    assert.ok(perConn.has(again.conn.id));
    again.release();
    await p.close();
  });

  it('a failed connect reaches every waiter and leaves no slot behind', async () => {
    let attempts = 0;
    const p = pool(1, 30_000, async () => {
      attempts++;
      throw unauthenticated('rejected');
    });
    const results = await Promise.allSettled([p.acquire(), p.acquire(), p.acquire()]);
    assert.ok(results.every((r) => r.status === 'rejected' && isFerryError(r.reason, 'unauthenticated')));
    assert.equal(attempts, 1, 'one connect attempt served all three waiters');
    assert.equal(p.size, 0);
    await rejectsWith(p.acquire(), 'unauthenticated');
    assert.equal(attempts, 2, 'the next operation tries again');
    await p.close();
  });

  it('closes idle connections, skips dead ones, and refuses work after close', async () => {
    const p = pool(4, 50);
    const lease = await p.acquire();
    const first = lease.conn;
    lease.release();
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(p.size, 0);
    assert.equal(first.ended, true);
    const second = await p.acquire();
    second.conn.alive = false; // dies while leased
    second.release();
    assert.equal(p.size, 0);
    const third = await p.acquire();
    assert.notEqual(third.conn.id, second.conn.id);
    third.release();
    await p.close();
    assert.equal(third.conn.ended, true);
    await rejectsWith(p.acquire(), 'backend');
  });
});
