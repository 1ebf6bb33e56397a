/**
 * Issue 24, part 1, as an operator meets it: instances (S3, SFTP) and async callbacks are stored
 * while FERRY_EGRESS_ALLOW lets Ferry reach loopback; Ferry restarts with FERRY_EGRESS_ALLOW
 * emptied. Every stored address — IPv4 literal, IPv6 literal, IPv4-mapped IPv6 and a host name
 * resolving to loopback — is then refused when Ferry would connect: hub calls answer 403 naming
 * FERRY_EGRESS_ALLOW, webhook attempts fail naming it, and a TCP listener of the test's own, in
 * front of each real server, sees no connection at all.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, USER_SECRET, ORG_SECRET, FAST_ASYNC, type TestServer } from '../helpers/server.js';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { startSshd, whySshdUnavailable, type TestSshd } from '../helpers/sshd.js';
import { startHttpCounter, startTcpCounter, type TcpCounter } from '../helpers/tcp-counter.js';

const ALLOW_LOOPBACK = '127.0.0.1/32,::1/128,localhost';

/** The address forms of one loopback server: [label, URL host, bare host]. */
const FORMS: Array<[string, string, string]> = [
  ['an IPv4 literal', '127.0.0.1', '127.0.0.1'],
  ['an IPv6 literal', '[::1]', '::1'],
  ['an IPv4-mapped IPv6 literal', '[::ffff:127.0.0.1]', '::ffff:127.0.0.1'],
  ['a host name resolving to loopback', 'localhost', 'localhost'],
];

const s3server = await startS3();
const sshd = await startSshd();
const sshdSkip = sshd === null ? `no test sshd: ${(await whySshdUnavailable()) ?? 'it failed to start'}` : false;

after(async () => {
  await s3server?.stop();
  await sshd?.stop();
});

function hubAuth(token: string): string {
  return `User ${USER_SECRET}, Organization ${ORG_SECRET}, Element ${token}`;
}

/** Stores instances with `allowed`, restarts Ferry with nothing allowed, returns the strict server. */
async function storeThenTighten(
  dir: string,
  create: (srv: TestServer) => Promise<void>,
  env: Record<string, string> = {},
): Promise<TestServer> {
  const allowed = await startTestServer({ ...env, FERRY_EGRESS_ALLOW: ALLOW_LOOPBACK, FERRY_BACKEND_TIMEOUT: '5000' }, dir);
  try {
    await create(allowed);
  } finally {
    await allowed.close();
  }
  return startTestServer({ FERRY_EGRESS_ALLOW: '', FERRY_BACKEND_TIMEOUT: '5000' }, dir);
}

describe('a stored backend address is refused at connect time once the policy tightens', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-egress-restart-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('amazons3 (AWS SDK HTTP handler): 403 naming FERRY_EGRESS_ALLOW, no connection', { skip: s3server === null ? 's3rver could not start' : false }, async () => {
    const s3 = s3server as S3TestServer;
    const counter: TcpCounter = await startHttpCounter(Number(new URL(s3.directEndpoint).port));
    const tokens = new Map<string, string>();
    let strict: TestServer | null = null;
    try {
      const bucket = await s3.newBucket();
      strict = await storeThenTighten(path.join(dir, 's3'), async (srv) => {
        for (const [label, urlHost] of FORMS) {
          const i = await srv.instance('amazons3', { ...s3.configFor(bucket), 'filemanagement.provider.endpoint': `http://${urlHost}:${counter.port}` }, label);
          tokens.set(label, i.token);
        }
      });
      assert.ok(counter.connections > 0, 'while allowed, the instances reached the server through the counter');
      counter.reset();
      for (const [label] of FORMS) {
        const res = await strict.api('/hubs/documents/folders/contents?path=/', { headers: { authorization: hubAuth(tokens.get(label)!) } });
        const body: any = await res.json();
        assert.equal(res.status, 403, `${label}: ${JSON.stringify(body)}`);
        assert.match(body.message, /FERRY_EGRESS_ALLOW/, label);
      }
      assert.equal(counter.connections, 0, 'a refused address sees no connection at all');
    } finally {
      await strict?.close();
      await counter.close();
    }
  });

  it('sftp (ssh2): 403 naming FERRY_EGRESS_ALLOW, no connection', { skip: sshdSkip }, async () => {
    const server = sshd as TestSshd;
    const counter = await startTcpCounter(server.port);
    const tokens = new Map<string, string>();
    let strict: TestServer | null = null;
    try {
      strict = await storeThenTighten(path.join(dir, 'sftp'), async (srv) => {
        for (const [label, , host] of FORMS) {
          const i = await srv.instance('sftp', { ...server.config, hostname: host, port: String(counter.port) }, label);
          tokens.set(label, i.token);
        }
      });
      assert.ok(counter.connections > 0, 'while allowed, the instances reached sshd through the counter');
      counter.reset();
      for (const [label] of FORMS) {
        const res = await strict.api('/hubs/documents/folders/contents?path=/', { headers: { authorization: hubAuth(tokens.get(label)!) } });
        const body: any = await res.json();
        assert.equal(res.status, 403, `${label}: ${JSON.stringify(body)}`);
        assert.match(body.message, /FERRY_EGRESS_ALLOW/, label);
      }
      assert.equal(counter.connections, 0, 'a refused address sees no connection at all');
    } finally {
      await strict?.close();
      await counter.close();
    }
  });

  it('webhooks (undici): callbacks accepted while allowed are refused when sent, no connection', async () => {
    const counter = await startTcpCounter();
    const events = new Map<string, number>();
    let strict: TestServer | null = null;
    const webhookDir = path.join(dir, 'webhooks');
    try {
      // An API-only node accepts and stores the jobs; nothing is delivered before the restart.
      const allowed = await startTestServer({ ...FAST_ASYNC, FERRY_EGRESS_ALLOW: ALLOW_LOOPBACK, FERRY_ROLE: 'api' }, webhookDir);
      try {
        // One callback stored in an instance's configuration, the others given per request.
        const configured = await allowed.instance('localfs', {
          root: 'hooks-configured',
          'event.notification.callback.url': `http://127.0.0.1:${counter.port}/configured`,
        });
        const accepted = await allowed.api('/hubs/documents/ping', {
          headers: { authorization: hubAuth(configured.token), 'elements-async-request': 'true' },
        });
        const acceptedBody: any = await accepted.json();
        assert.equal(accepted.status, 200, JSON.stringify(acceptedBody));
        events.set('a callback URL from the instance configuration', acceptedBody.eventId);
        const i = await allowed.instance('localfs', { root: 'hooks' });
        for (const [label, urlHost] of FORMS) {
          const res = await allowed.api('/hubs/documents/ping', {
            headers: {
              authorization: hubAuth(i.token),
              'elements-async-request': 'true',
              'elements-async-callback-url': `http://${urlHost}:${counter.port}/hook`,
            },
          });
          const body: any = await res.json();
          assert.equal(res.status, 200, `${label}: ${JSON.stringify(body)}`);
          events.set(label, body.eventId);
        }
      } finally {
        await allowed.close();
      }
      strict = await startTestServer({ ...FAST_ASYNC, FERRY_EGRESS_ALLOW: '' }, webhookDir);
      for (const [label, eventId] of events) {
        let event: any;
        for (let tries = 0; tries < 200; tries++) {
          event = await (await strict.api(`/instances/events/${eventId}`)).json();
          if (event.deliveries?.length > 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(event.deliveries?.length > 0, `${label}: a delivery was attempted: ${JSON.stringify(event)}`);
        assert.equal(event.deliveries[0].statusCode ?? null, null, label);
        assert.match(event.deliveries[0].error, /Egress refused.*FERRY_EGRESS_ALLOW/, label);
      }
      assert.equal(counter.connections, 0, 'a refused callback address sees no connection at all');
    } finally {
      await strict?.close();
      await counter.close();
    }
  });
});
