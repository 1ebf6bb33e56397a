/**
 * Backend addresses named by an instance configuration (S3 endpoint, SFTP host name) pass the
 * egress policy like callback URLs: without FERRY_EGRESS_ALLOW an instance cannot be pointed at
 * the host's loopback, a private network or the metadata service, and nothing is stored.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createEgressPolicy } from '../../src/async/egress.js';
import { amazons3 } from '../../src/elements/amazons3/index.js';
import { sftp as sftpElement } from '../../src/elements/sftp/index.js';
import { FerryError } from '../../src/errors.js';

const s3 = (endpoint: string) => ({
  element: { key: 'amazons3' },
  name: 's3',
  configuration: {
    'filemanagement.provider.access_key': 'AKIAEGRESS',
    'filemanagement.provider.secret_key': 'egress-secret',
    'filemanagement.provider.bucket_name': 'b',
    'filemanagement.provider.endpoint': endpoint,
  },
});
const sftp = (hostname: string) => ({
  element: { key: 'sftp' },
  name: 'sftp',
  configuration: { hostname, port: '22', username: 'u', password: 'p' },
});

describe('egress policy for backend addresses', () => {
  let strict: TestServer;
  let open: TestServer;
  before(async () => {
    strict = await startTestServer({ FERRY_EGRESS_ALLOW: '' });
    open = await startTestServer({ FERRY_EGRESS_ALLOW: '127.0.0.1/32,localhost', FERRY_BACKEND_TIMEOUT: '2000' });
  });
  after(async () => {
    await strict.close();
    await open.close();
  });

  const refused: [string, object][] = [
    ['S3 endpoint on loopback', s3('http://127.0.0.1:9000')],
    ['S3 endpoint named localhost', s3('http://localhost:9000')],
    ['S3 endpoint on the metadata address', s3('http://169.254.169.254/')],
    ['S3 endpoint in a private network', s3('http://10.1.2.3:9000')],
    ['S3 endpoint as a decimal IP', s3('http://2130706433:9000')],
    ['SFTP host on loopback', sftp('127.0.0.1')],
    ['SFTP host named localhost', sftp('localhost')],
    ['SFTP host on an IPv6 loopback', sftp('::1')],
    ['SFTP host in a private network', sftp('192.168.1.10')],
  ];
  for (const [what, body] of refused) {
    it(`${what} → 400 naming the key and FERRY_EGRESS_ALLOW; nothing stored`, async () => {
      const res = await strict.api('/instances', { method: 'POST', json: body });
      const answer: any = await res.json();
      assert.equal(res.status, 400, JSON.stringify(answer));
      assert.match(answer.message, /Configuration key (filemanagement\.provider\.endpoint|hostname)/);
      assert.match(answer.message, /FERRY_EGRESS_ALLOW/);
      assert.doesNotMatch(JSON.stringify(answer), /egress-secret/);
      const list: any = await (await strict.api('/instances')).json();
      assert.equal(list.length, 0);
    });
  }

  it('an allowed address passes the policy (and then fails only because nothing answers there)', async () => {
    const res = await open.api('/instances', { method: 'POST', json: sftp('127.0.0.1') });
    const answer: any = await res.json();
    assert.equal(res.status, 400);
    assert.doesNotMatch(answer.message, /FERRY_EGRESS_ALLOW/);
    assert.ok(answer.providerMessage, 'the backend was contacted: its error is the providerMessage');
  });
});

describe('egress policy for backend connections (connect time)', () => {
  // A resolver that "rebinds": the name now points at loopback, whatever it pointed at before.
  const policy = createEgressPolicy([], { resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
  const context = { localfsBase: '/nonexistent', backendTimeoutMs: 3000, egress: policy };

  it('an SFTP host name that now resolves to loopback is never connected to', async () => {
    const element = sftpElement.create({ hostname: 'files.rebind.example', port: '22', username: 'u', password: 'p' }, context);
    try {
      await assert.rejects(element.ping(), (e: unknown) => {
        assert.ok(e instanceof FerryError, String(e));
        assert.match(`${e.message} ${e.providerMessage ?? ''}`, /Egress refused/);
        return true;
      });
    } finally {
      await element.close();
    }
  });

  it('an S3 endpoint name that now resolves to loopback is never connected to', async () => {
    const element = amazons3.create(
      {
        'filemanagement.provider.access_key': 'AKIAEGRESS',
        'filemanagement.provider.secret_key': 'egress-secret',
        'filemanagement.provider.bucket_name': 'b',
        'filemanagement.provider.endpoint': 'http://s3.rebind.example:9000',
      },
      context,
    );
    try {
      await assert.rejects(element.ping(), (e: unknown) => {
        assert.ok(e instanceof FerryError, String(e));
        assert.match(`${e.message} ${e.providerMessage ?? ''}`, /Egress refused/);
        assert.doesNotMatch(`${e.message} ${e.providerMessage ?? ''}`, /egress-secret/);
        return true;
      });
    } finally {
      await element.close();
    }
  });
});
