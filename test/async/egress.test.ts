/**
 * Egress policy: which URLs and addresses are refused, in every spelling, and — against a real
 * loopback HTTP server — that the dispatcher refuses at connect time what the policy refuses,
 * including host names that only turn out to be loopback once resolved.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { createEgressPolicy } from '../../src/async/egress.js';
import { isFerryError } from '../../src/errors.js';

const REFUSED_URLS = [
  'http://127.0.0.1/',
  'http://127.0.0.1.:8080/',
  'http://127.1/',
  'http://2130706433/',
  'http://0177.0.0.1/',
  'http://0x7f.1/',
  'https://0x7f000001/',
  'http://[::1]/',
  'http://[0:0:0:0:0:0:0:1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:7f00:1]/',
  'http://[0:0:0:0:0:ffff:127.0.0.1]/',
  'http://[::127.0.0.1]/',
  'http://[::ffff:0:127.0.0.1]/',
  'http://0/',
  'http://0.0.0.0/',
  'http://[::]/',
  'http://10.1.2.3/',
  'http://172.16.0.1/',
  'http://172.31.255.255/',
  'http://192.168.1.1/',
  'http://100.64.0.1/',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::ffff:169.254.169.254]/',
  'http://[fe80::1]/',
  'http://[fd00:ec2::254]/',
  'http://[fc00::1]/',
  'http://224.0.0.1/',
  'http://239.255.255.250/',
  'http://[ff02::1]/',
  'http://255.255.255.255/',
  'http://240.0.0.1/',
  'http://192.0.2.1/',
  'http://198.51.100.7/',
  'http://203.0.113.9/',
  'http://198.18.0.1/',
  'http://198.19.255.255/',
  'http://[2001:db8::1]/',
  'http://[64:ff9b::127.0.0.1]/',
  'http://[64:ff9b::a00:1]/',
  'http://[2002:7f00:1::]/',
  'http://[2002:c0a8:101::1]/',
  'http://[2001::1]/', // Teredo
  'http://[100::1]/',
];

const ALLOWED_URLS = [
  'https://example.com/hook?token=x',
  'http://hooks.example.org:8443/a/b',
  'http://localhost:4000/', // names pass here; they are checked when resolved at connect time
  'http://93.184.216.34/',
  'http://172.32.0.1/',
  'http://100.128.0.1/',
  'http://198.20.0.1/',
  'http://8.8.8.8/',
  'http://[2606:4700:4700::1111]/',
  'http://[::ffff:8.8.8.8]/',
  'http://[64:ff9b::8.8.8.8]/',
  'http://[2002:808:808::1]/',
];

const BAD_URLS: Array<[string, RegExp]> = [
  ['ftp://example.com/', /scheme "ftp" is not allowed/],
  ['file:///etc/passwd', /scheme "file"/],
  ['javascript:alert(1)', /scheme "javascript"/],
  ['gopher://example.com/', /scheme "gopher"/],
  ['/relative/path', /not a valid absolute URL/],
  ['not a url', /not a valid absolute URL/],
  ['http://', /not a valid absolute URL/],
  ['http://user:s3cret@example.com/', /must not contain credentials/],
  ['http://user@example.com/', /must not contain credentials/],
  ['http://1.2.3.4.5/', /not a valid absolute URL/],
];

describe('checkUrl', () => {
  const policy = createEgressPolicy([]);

  for (const url of REFUSED_URLS) {
    test(`refuses ${url}`, () => {
      assert.throws(
        () => policy.checkUrl(url),
        (e: unknown) => isFerryError(e, 'invalid') && /FERRY_EGRESS_ALLOW/.test(e.message) && /address/.test(e.message),
      );
    });
  }

  for (const url of ALLOWED_URLS) {
    test(`accepts ${url}`, () => {
      assert.equal(policy.checkUrl(url).href, new URL(url).href);
    });
  }

  for (const [url, message] of BAD_URLS) {
    test(`rejects malformed ${url}`, () => {
      assert.throws(() => policy.checkUrl(url), (e: unknown) => isFerryError(e, 'invalid') && message.test(e.message));
    });
  }

  test('messages name the range and never echo credentials', () => {
    assert.throws(() => policy.checkUrl('http://0x7f.1/'), /127\.0\.0\.1 is a loopback address/);
    assert.throws(() => policy.checkUrl('http://169.254.169.254/'), /link-local \(cloud metadata\)/);
    assert.throws(() => policy.checkUrl('http://[::ffff:10.0.0.1]/'), /is a private \(IPv4-mapped\) address/);
    assert.throws(() => policy.checkUrl('http://0.0.0.0/'), /is an unspecified address/);
    assert.throws(() => policy.checkUrl('http://[2001::1]/'), /is an IETF protocol assignment/);
    assert.throws(
      () => policy.checkUrl('http://alice:hunter2@example.com/'),
      (e: unknown) => e instanceof Error && !e.message.includes('hunter2') && !e.message.includes('alice'),
    );
  });

  test('allowed ranges open the same addresses in every spelling', () => {
    const open = createEgressPolicy(['127.0.0.1/32', '::1/128']);
    for (const url of ['http://127.0.0.1/', 'http://2130706433/', 'http://0x7f.1/', 'http://[::ffff:127.0.0.1]/', 'http://[::1]/']) {
      assert.doesNotThrow(() => open.checkUrl(url), url);
    }
    assert.throws(() => open.checkUrl('http://127.0.0.2/'), /loopback/);
    assert.throws(() => open.checkUrl('http://10.0.0.1/'), /private/);
  });
});

describe('checkAddress', () => {
  test('default policy: special ranges refused, public addresses allowed', () => {
    const p = createEgressPolicy([]);
    const refused = ['127.0.0.1', '127.255.255.254', '::1', '::', '0.0.0.0', '10.0.0.1', '172.20.1.1', '192.168.0.1', '100.100.100.200',
      '169.254.169.254', 'fe80::1%eth0', 'fd12:3456::1', '224.0.0.251', 'ff05::2', '255.255.255.255', '::ffff:192.168.0.1',
      '::ffff:0a00:0001', '64:ff9b::192.168.0.1', '2002:a9fe:a9fe::1', '2001:db8:1::1', '198.18.5.5', '192.0.0.8', 'garbage', '1::2::3', ''];
    for (const ip of refused) assert.equal(p.checkAddress(ip, 'example.com'), false, ip);
    const allowed = ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '2a00:1450:4001::200e', '::ffff:8.8.4.4', '64:ff9b::1.1.1.1', '172.15.255.255', '11.0.0.1'];
    for (const ip of allowed) assert.equal(p.checkAddress(ip, 'example.com'), true, ip);
    assert.equal(p.explain('127.0.0.1', 'x'), 'loopback');
    assert.equal(p.explain('8.8.8.8', 'x'), null);
  });

  test('allow list: CIDRs and host names', () => {
    const p = createEgressPolicy(['127.0.0.1/32', ' 10.0.0.0/8 ', 'Hooks.Internal', '::1', 'fd00::/8']);
    assert.equal(p.checkAddress('127.0.0.1', 'x'), true);
    assert.equal(p.checkAddress('::ffff:127.0.0.1', 'x'), true); // mapped form of an allowed IPv4
    assert.equal(p.checkAddress('127.0.0.2', 'x'), false);
    assert.equal(p.checkAddress('10.200.3.4', 'x'), true);
    assert.equal(p.checkAddress('::1', 'x'), true);
    assert.equal(p.checkAddress('fd00::5', 'x'), true);
    assert.equal(p.checkAddress('fc00::5', 'x'), false);
    assert.equal(p.checkAddress('192.168.7.7', 'x'), false);
    assert.equal(p.checkAddress('192.168.7.7', 'hooks.internal'), true);
    assert.equal(p.checkAddress('192.168.7.7', 'HOOKS.INTERNAL.'), true);
    assert.equal(p.checkAddress('192.168.7.7', 'evil.hooks.internal'), false); // exact names only
  });

  test('bad allow entries are refused naming FERRY_EGRESS_ALLOW', () => {
    for (const entry of ['10.0.0.0/33', '300.1.1.1', '::1/129', 'foo bar', '10.0.0.1/8/1', '1.2.3', 'a$b', 'http://localhost']) {
      assert.throws(() => createEgressPolicy([entry]), (e: unknown) => isFerryError(e, 'invalid') && /FERRY_EGRESS_ALLOW/.test(e.message), entry);
    }
    assert.doesNotThrow(() => createEgressPolicy(['', '0.0.0.0/0', '::/0', 'localhost']));
  });
});

describe('dispatcher (connect-time check against a real loopback server)', () => {
  let server: http.Server;
  let port: number;
  let connections = 0;

  before(async () => {
    server = http.createServer((_req, res) => res.end('hello'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function get(allow: string[], url: string) {
    const agent = createEgressPolicy(allow).dispatcher({ connectTimeoutMs: 2000 });
    try {
      const res = await request(url, { dispatcher: agent });
      return { status: res.statusCode, text: await res.body.text() };
    } finally {
      await agent.destroy();
    }
  }

  async function refused(allow: string[], url: string, pattern: RegExp) {
    const before = connections;
    await assert.rejects(get(allow, url), (e: unknown) => isFerryError(e, 'forbidden') && pattern.test(e.message));
    assert.equal(connections, before, 'no connection reached the server');
  }

  test('loopback IP is refused by default (no connection is made)', async () => {
    await refused([], `http://127.0.0.1:${port}/`, /127\.0\.0\.1 is a loopback address.*FERRY_EGRESS_ALLOW/);
  });

  test('IP spellings that skip checkUrl are refused at connect too', async () => {
    await refused([], `http://[::ffff:127.0.0.1]:${port}/`, /loopback \(IPv4-mapped\)/);
    await refused([], `http://0x7f.1:${port}/`, /loopback/);
  });

  test('loopback is reachable when 127.0.0.1/32 is allowed', async () => {
    assert.deepEqual(await get(['127.0.0.1/32'], `http://127.0.0.1:${port}/`), { status: 200, text: 'hello' });
  });

  test('a host name resolving to loopback passes checkUrl but is refused at connect', async () => {
    const url = `http://localhost:${port}/`;
    assert.doesNotThrow(() => createEgressPolicy([]).checkUrl(url));
    await refused([], url, /localhost \((127\.0\.0\.1|::1)\) is a loopback address/);
  });

  test('localhost in the allow list makes it reachable', async () => {
    assert.deepEqual(await get(['localhost'], `http://LocalHost:${port}/`), { status: 200, text: 'hello' });
  });

  // A resolver we control plays the part of a hostile DNS server.
  function resolverFor(answers: Record<string, string[]>) {
    return async (hostname: string) =>
      (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  }

  async function getVia(allow: string[], answers: Record<string, string[]>, url: string) {
    const agent = createEgressPolicy(allow, { resolve: resolverFor(answers) }).dispatcher({ connectTimeoutMs: 2000 });
    try {
      const res = await request(url, { dispatcher: agent });
      return { status: res.statusCode, text: await res.body.text() };
    } finally {
      await agent.destroy();
    }
  }

  test('every resolved address must be allowed, not just one (rebinding)', async () => {
    const before = connections;
    // The name looks public to anyone checking one answer; its second address is loopback.
    const answers = { 'rebind.test': ['93.184.216.34', '127.0.0.1'] };
    assert.doesNotThrow(() => createEgressPolicy([]).checkUrl(`http://rebind.test:${port}/`));
    await assert.rejects(
      getVia([], answers, `http://rebind.test:${port}/`),
      (e: unknown) => isFerryError(e, 'forbidden') && /rebind\.test \(127\.0\.0\.1\) is a loopback address/.test(e.message),
    );
    await assert.rejects(
      getVia(['127.0.0.1/32'], { 'two.test': ['127.0.0.1', '::ffff:10.0.0.1'] }, `http://two.test:${port}/`),
      (e: unknown) => isFerryError(e, 'forbidden') && /10\.0\.0\.1/.test(e.message),
    );
    assert.equal(connections, before, 'no connection reached the server');
  });

  test('an allowed name connects to the addresses it resolved to', async () => {
    const answers = { 'hooks.test': ['127.0.0.1'] };
    assert.deepEqual(await getVia(['hooks.test'], answers, `http://hooks.test:${port}/`), { status: 200, text: 'hello' });
    assert.deepEqual(await getVia(['127.0.0.0/8'], answers, `http://hooks.test:${port}/`), { status: 200, text: 'hello' });
  });

  test('a name that does not resolve fails with a DNS error, not a refusal', async () => {
    await assert.rejects(getVia([], {}, `http://nowhere.test:${port}/`), (e: unknown) => {
      return !isFerryError(e) && (e as { code?: string }).code === 'ENOTFOUND';
    });
  });
});
