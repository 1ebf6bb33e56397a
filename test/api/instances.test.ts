/**
 * HTTP tests of instance CRUD (DESIGN §1.3) on the localfs element: creation and validation,
 * secret masking, listing and filtering, updates, configuration entries, enabling/disabling,
 * deletion, the `/elements/{key}/instances` twin routes, organization isolation, and secrets at
 * rest (the SQLite files never hold a raw secret; credentials.json is private).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ORG_SECRET, PLATFORM_AUTH, USER_SECRET, startTestServer, type TestServer } from '../helpers/server.js';
import { hashSecret } from '../../src/identity/secrets.js';
import { MasterKey } from '../../src/identity/crypto.js';

const MASK = '********';
const SIG_KEY = 'sig-key-Zq81xVb0r3KmT7yPq2Wn5cLs9HdUe4Fa';

async function json(res: Response, status = 200): Promise<any> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

describe('instances API', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.close();
  });

  /** The clear value of a stored configuration key, decrypted with the data dir's master key. */
  async function storedSecret(id: number, key: string): Promise<string | undefined> {
    const org = await srv.ferry.store.findOrganizationBySecretHash(hashSecret(ORG_SECRET));
    const instance = await srv.ferry.store.getInstance(org!.id, id);
    const value = instance?.configuration[key];
    if (value === undefined) return undefined;
    assert.ok(value.startsWith('enc:'), `${key} is stored encrypted`);
    return MasterKey.load(srv.config.masterKey, srv.dataDir).decrypt(value);
  }

  async function hubPing(auth: string): Promise<number> {
    const res = await fetch(`${srv.base}/hubs/documents/ping`, { headers: { authorization: auth } });
    await res.arrayBuffer();
    return res.status;
  }

  it('creates an instance: 200, a token, masked secrets and defaults', async () => {
    const res = await srv.api('/instances', {
      method: 'POST',
      json: {
        element: { key: 'localfs' },
        name: 'create-me',
        tags: ['t1', 't2'],
        configuration: { root: 'create-me', 'event.notification.signature.key': SIG_KEY },
      },
    });
    const body = await json(res);
    assert.match(res.headers.get('elements-request-id') ?? '', /^[0-9a-f]{24}$/);
    assert.equal(typeof body.id, 'number');
    assert.equal(typeof body.token, 'string');
    assert.ok(body.token.length >= 40, 'a long random token');
    assert.equal(body.name, 'create-me');
    const { id, key, name, hub } = body.element;
    assert.deepEqual({ id, key, name, hub }, { id: body.element.id, key: 'localfs', name: body.element.name, hub: 'documents' });
    assert.deepEqual(body.tags, ['t1', 't2']);
    assert.equal(body.configuration.root, 'create-me');
    assert.equal(body.configuration['event.notification.signature.key'], MASK);
    assert.equal(body.configuration['event.notification.enabled'], 'false');
    assert.equal(body.eventsEnabled, false);
    assert.equal(body.disabled, false);
    assert.equal(body.valid, true);
    assert.ok(!Number.isNaN(Date.parse(body.createdDate)) && !Number.isNaN(Date.parse(body.updatedDate)));
    assert.equal(body.user.emailAddress, 'admin@localhost');
    assert.ok(!JSON.stringify(body).includes(SIG_KEY), 'the signature key is never echoed');
    // The root folder exists under the localfs base.
    assert.ok(fs.statSync(path.join(srv.config.localfsBase, 'create-me')).isDirectory());

    const one = await json(await srv.api(`/instances/${body.id}`));
    assert.equal(one.token, undefined, 'the token is shown once');
    assert.equal(one.configuration['event.notification.signature.key'], MASK);
    assert.equal(await storedSecret(body.id, 'event.notification.signature.key'), SIG_KEY);
    assert.equal(await hubPing(`User ${USER_SECRET}, Element ${body.token}`), 200);
  });

  it('accepts the element named by its numeric id', async () => {
    const elements = await json(await srv.api('/elements'));
    const id = elements.find((e: any) => e.key === 'localfs').id;
    const body = await json(
      await srv.api('/instances', { method: 'POST', json: { element: { id }, name: 'by-id', configuration: { root: 'by-id' } } }),
    );
    assert.equal(body.element.key, 'localfs');
    assert.equal(body.element.id, id);
    await json(await srv.api('/instances', { method: 'POST', json: { element: { id: 987654 }, name: 'x', configuration: { root: 'x' } } }), 404);
    await json(await srv.api(`/instances/${body.id}`, { method: 'DELETE' }));
  });

  it('refuses bad configurations with a 400 naming the key', async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['missing root', {}, /root/],
      ['unknown key', { root: 'x', colour: 'blue' }, /colour/],
      ['root with ..', { root: '../outside' }, /root/],
      ['root nested ..', { root: 'a/../../b' }, /root/],
      ['absolute root', { root: '/etc' }, /root/],
      ['bad enabled flag', { root: 'x', 'event.notification.enabled': 'maybe' }, /event\.notification\.enabled/],
    ];
    for (const [what, configuration, key] of cases) {
      const res = await srv.api('/instances', { method: 'POST', json: { element: { key: 'localfs' }, name: what, configuration } });
      const body = await json(res, 400).catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
      assert.match(body.message, key, `${what}: message names the key`);
      assert.equal(body.requestId, res.headers.get('elements-request-id'));
    }
    assert.ok(!fs.existsSync(path.join(path.dirname(srv.config.localfsBase), 'outside')), 'nothing created outside the base');
    // No element, unknown element, no name.
    await json(await srv.api('/instances', { method: 'POST', json: { name: 'n', configuration: { root: 'x' } } }), 400);
    const unknown = await srv.api('/instances', { method: 'POST', json: { element: { key: 'ftp' }, name: 'n', configuration: {} } });
    assert.ok(unknown.status === 400 || unknown.status === 404, `unknown element → ${unknown.status}`);
    await unknown.arrayBuffer();
    await json(await srv.api('/instances', { method: 'POST', json: { element: { key: 'localfs' }, configuration: { root: 'x' } } }), 400);
    // Nothing was stored by the refused requests.
    const list = await json(await srv.api('/instances'));
    assert.ok(!list.some((i: any) => i.name === 'missing root' || i.name === 'unknown key' || i.name === 'n'));
  });

  it('lists instances and filters them by tags[]', async () => {
    const a = await srv.instance('localfs', { root: 'list-a' }, 'list-a');
    const b = await srv.instance('localfs', { root: 'list-b' }, 'list-b');
    await json(await srv.api(`/instances/${a.id}`, { method: 'PATCH', json: { tags: ['red', 'shared'] } }));
    await json(await srv.api(`/instances/${b.id}`, { method: 'PATCH', json: { tags: ['blue', 'shared'] } }));

    const all = await json(await srv.api('/instances'));
    assert.ok(all.some((i: any) => i.id === a.id) && all.some((i: any) => i.id === b.id));
    assert.ok(all.every((i: any) => i.token === undefined), 'no token in lists');

    const red = await json(await srv.api('/instances?tags[]=red'));
    assert.deepEqual(red.map((i: any) => i.id), [a.id]);
    const shared = await json(await srv.api('/instances?tags%5B%5D=shared'));
    assert.deepEqual(shared.map((i: any) => i.id).sort(), [a.id, b.id].sort());
    const both = await json(await srv.api('/instances?tags[]=shared&tags[]=blue'));
    assert.deepEqual(both.map((i: any) => i.id), [b.id]);
    const none = await json(await srv.api('/instances?tags[]=green'));
    assert.deepEqual(none, []);
  });

  it('GET one; 404 for an unknown id, 400 for a non-numeric id', async () => {
    const a = await srv.instance('localfs', { root: 'get-one' }, 'get-one');
    const one = await json(await srv.api(`/instances/${a.id}`));
    assert.equal(one.id, a.id);
    assert.equal(one.name, 'get-one');
    await json(await srv.api('/instances/999999'), 404);
    await json(await srv.api('/instances/abc'), 400);
  });

  it('PUT and PATCH change name, tags and configuration; masked values keep the secret', async () => {
    const a = await srv.instance('localfs', { root: 'upd-a', 'event.notification.signature.key': SIG_KEY }, 'upd');
    const read = await json(await srv.api(`/instances/${a.id}`));

    // PATCH name + tags only.
    const patched = await json(await srv.api(`/instances/${a.id}`, { method: 'PATCH', json: { name: 'upd-2', tags: ['x'] } }));
    assert.equal(patched.name, 'upd-2');
    assert.deepEqual(patched.tags, ['x']);
    assert.equal(patched.configuration.root, 'upd-a');
    assert.equal(patched.configuration['event.notification.signature.key'], MASK);
    assert.equal(await storedSecret(a.id, 'event.notification.signature.key'), SIG_KEY);

    // PUT with the configuration as read (masked) keeps the secret; changes root.
    const put = await json(
      await srv.api(`/instances/${a.id}`, {
        method: 'PUT',
        json: { name: 'upd-3', tags: [], configuration: { ...read.configuration, root: 'upd-b' } },
      }),
    );
    assert.equal(put.name, 'upd-3');
    assert.deepEqual(put.tags, []);
    assert.equal(put.configuration.root, 'upd-b');
    assert.equal(put.configuration['event.notification.signature.key'], MASK);
    assert.equal(await storedSecret(a.id, 'event.notification.signature.key'), SIG_KEY);

    // The instance works on its new root.
    const up = await fetch(`${srv.base}/hubs/documents/folders`, {
      method: 'POST',
      headers: { authorization: a.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/moved-root-check' }),
    });
    await json(up);
    assert.ok(fs.statSync(path.join(srv.config.localfsBase, 'upd-b', 'moved-root-check')).isDirectory());

    // PATCH configuration with a new secret replaces it; the answer stays masked.
    const changed = await json(
      await srv.api(`/instances/${a.id}`, { method: 'PATCH', json: { configuration: { 'event.notification.signature.key': 'new-key-123' } } }),
    );
    assert.equal(changed.configuration['event.notification.signature.key'], MASK);
    assert.equal(changed.configuration.root, 'upd-b', 'PATCH merges the configuration');
    assert.equal(await storedSecret(a.id, 'event.notification.signature.key'), 'new-key-123');

    // PUT needs a name; bad configuration refused and nothing changed.
    await json(await srv.api(`/instances/${a.id}`, { method: 'PUT', json: { tags: [] } }), 400);
    const bad = await json(await srv.api(`/instances/${a.id}`, { method: 'PATCH', json: { configuration: { root: '../x' } } }), 400);
    assert.match(bad.message, /root/);
    const after = await json(await srv.api(`/instances/${a.id}`));
    assert.equal(after.configuration.root, 'upd-b');
    assert.equal(after.name, 'upd-3');
    // An instance cannot change its element.
    await json(await srv.api(`/instances/${a.id}`, { method: 'PATCH', json: { element: { key: 'sftp' } } }), 400);
    assert.equal(await hubPing(a.auth), 200);
  });

  it('lists configuration entries and PATCHes one by id', async () => {
    const a = await srv.instance('localfs', { root: 'cfg-a', 'event.notification.signature.key': SIG_KEY }, 'cfg');
    const entries = await json(await srv.api(`/instances/${a.id}/configuration`));
    assert.ok(Array.isArray(entries));
    const root = entries.find((e: any) => e.key === 'root');
    const sig = entries.find((e: any) => e.key === 'event.notification.signature.key');
    const enabled = entries.find((e: any) => e.key === 'event.notification.enabled');
    assert.equal(root.propertyValue, 'cfg-a');
    assert.equal(sig.propertyValue, MASK);
    assert.equal(sig.secret, true);
    assert.equal(enabled.propertyValue, 'false');
    assert.equal(new Set(entries.map((e: any) => e.id)).size, entries.length, 'ids are distinct');

    const updated = await json(
      await srv.api(`/instances/${a.id}/configuration/${enabled.id}`, { method: 'PATCH', json: { propertyValue: 'true' } }),
    );
    assert.equal(updated.key, 'event.notification.enabled');
    assert.equal(updated.propertyValue, 'true');
    const inst = await json(await srv.api(`/instances/${a.id}`));
    assert.equal(inst.eventsEnabled, true);

    const sigUpdated = await json(
      await srv.api(`/instances/${a.id}/configuration/${sig.id}`, { method: 'PATCH', json: { propertyValue: 'other-key-456' } }),
    );
    assert.equal(sigUpdated.propertyValue, MASK);
    assert.equal(await storedSecret(a.id, 'event.notification.signature.key'), 'other-key-456');

    // The masked value sent back keeps the secret.
    await json(await srv.api(`/instances/${a.id}/configuration/${sig.id}`, { method: 'PATCH', json: { propertyValue: MASK } }));
    assert.equal(await storedSecret(a.id, 'event.notification.signature.key'), 'other-key-456');

    await json(await srv.api(`/instances/${a.id}/configuration/9999`, { method: 'PATCH', json: { propertyValue: 'x' } }), 404);
    await json(await srv.api(`/instances/${a.id}/configuration/${enabled.id}`, { method: 'PATCH', json: { value: 'x' } }), 400);
    await json(await srv.api(`/instances/${a.id}/configuration/${enabled.id}`, { method: 'PATCH', json: { propertyValue: 'maybe' } }), 400);
    const root2 = await json(
      await srv.api(`/instances/${a.id}/configuration/${root.id}`, { method: 'PATCH', json: { propertyValue: '/etc' } }),
      400,
    );
    assert.match(root2.message, /root/);
  });

  it('disables and re-enables an instance: hub calls answer 403 while disabled', async () => {
    const a = await srv.instance('localfs', { root: 'toggle' }, 'toggle');
    assert.equal(await hubPing(a.auth), 200);
    const off = await json(await srv.api(`/instances/${a.id}/enabled`, { method: 'DELETE' }));
    assert.equal(off.disabled, true);
    assert.equal(await hubPing(a.auth), 403);
    const res = await fetch(`${srv.base}/hubs/documents/folders/contents?path=/`, { headers: { authorization: a.auth } });
    const err = await json(res, 403);
    assert.equal(err.requestId, res.headers.get('elements-request-id'));
    assert.equal((await json(await srv.api(`/instances/${a.id}`))).disabled, true);
    const on = await json(await srv.api(`/instances/${a.id}/enabled`, { method: 'PUT' }));
    assert.equal(on.disabled, false);
    assert.equal(await hubPing(a.auth), 200);
  });

  it('DELETE removes the instance; its token then answers 401', async () => {
    const a = await srv.instance('localfs', { root: 'gone' }, 'gone');
    assert.equal(await hubPing(a.auth), 200);
    const res = await srv.api(`/instances/${a.id}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.equal(await hubPing(a.auth), 401);
    await json(await srv.api(`/instances/${a.id}`), 404);
    await json(await srv.api(`/instances/${a.id}`, { method: 'DELETE' }), 404);
  });

  it('serves the same CRUD under /elements/localfs/instances', async () => {
    const created = await json(
      await srv.api('/elements/localfs/instances', { method: 'POST', json: { name: 'by-element', configuration: { root: 'by-element' } } }),
    );
    assert.equal(created.element.key, 'localfs');
    assert.ok(created.token);
    const id = created.id;
    const list = await json(await srv.api('/elements/localfs/instances'));
    assert.ok(list.some((i: any) => i.id === id));
    assert.ok(list.every((i: any) => i.element.key === 'localfs'));
    assert.deepEqual(await json(await srv.api('/elements/sftp/instances')), []);
    assert.equal((await json(await srv.api(`/elements/localfs/instances/${id}`))).name, 'by-element');
    const patched = await json(await srv.api(`/elements/localfs/instances/${id}`, { method: 'PATCH', json: { name: 'by-element-2' } }));
    assert.equal(patched.name, 'by-element-2');
    const put = await json(await srv.api(`/elements/localfs/instances/${id}`, { method: 'PUT', json: { name: 'by-element-3' } }));
    assert.equal(put.name, 'by-element-3');
    const cfg = await json(await srv.api(`/elements/localfs/instances/${id}/configuration`));
    assert.ok(cfg.some((e: any) => e.key === 'root'));
    assert.equal((await json(await srv.api(`/elements/localfs/instances/${id}/enabled`, { method: 'DELETE' }))).disabled, true);
    assert.equal((await json(await srv.api(`/elements/localfs/instances/${id}/enabled`, { method: 'PUT' }))).disabled, false);

    // A mismatched element key.
    for (const [method, suffix] of [
      ['GET', ''],
      ['PATCH', ''],
      ['DELETE', ''],
      ['GET', '/configuration'],
    ] as const) {
      const res = await srv.api(`/elements/sftp/instances/${id}${suffix}`, {
        method,
        ...(method === 'PATCH' ? { json: { name: 'nope' } } : {}),
      });
      assert.ok(res.status === 404 || res.status === 400, `${method} mismatched element → ${res.status}`);
      await res.arrayBuffer();
    }
    const mismatch = await srv.api('/elements/sftp/instances', {
      method: 'POST',
      json: { element: { key: 'localfs' }, name: 'x', configuration: { root: 'x' } },
    });
    assert.equal(mismatch.status, 400);
    await mismatch.arrayBuffer();
    await json(await srv.api('/elements/nope/instances', { method: 'POST', json: { name: 'x', configuration: {} } }), 404);
    assert.equal((await json(await srv.api(`/instances/${id}`))).name, 'by-element-3', 'the mismatched PATCH changed nothing');

    const del = await srv.api(`/elements/localfs/instances/${id}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await del.arrayBuffer();
    await json(await srv.api(`/instances/${id}`), 404);
  });

  it('isolates organizations', async () => {
    const mine = await srv.instance('localfs', { root: 'org-a' }, 'org-a');
    const store = srv.ferry.store;
    const otherOrgSecret = 'other-org-secret-0123456789abcdef0123456789';
    const otherUserSecret = 'other-user-secret-0123456789abcdef012345678';
    const org = await store.createOrganization({ name: 'other', secretHash: hashSecret(otherOrgSecret) });
    await store.createUser({
      organizationId: org.id,
      emailAddress: 'other@example.com',
      firstName: 'O',
      lastName: 'Ther',
      secretHash: hashSecret(otherUserSecret),
    });
    const other = { authorization: `User ${otherUserSecret}, Organization ${otherOrgSecret}` };

    const list = await json(await srv.api('/instances', { headers: other }));
    assert.deepEqual(list, [], 'the other organization sees no instance');
    await json(await srv.api(`/instances/${mine.id}`, { headers: other }), 404);
    await json(await srv.api(`/instances/${mine.id}`, { method: 'PATCH', headers: other, json: { name: 'stolen' } }), 404);
    await json(await srv.api(`/instances/${mine.id}`, { method: 'PUT', headers: other, json: { name: 'stolen' } }), 404);
    await json(await srv.api(`/instances/${mine.id}/configuration`, { headers: other }), 404);
    await json(
      await srv.api(`/instances/${mine.id}/configuration/1`, { method: 'PATCH', headers: other, json: { propertyValue: 'x' } }),
      404,
    );
    await json(await srv.api(`/instances/${mine.id}/enabled`, { method: 'DELETE', headers: other }), 404);
    await json(await srv.api(`/elements/localfs/instances/${mine.id}`, { headers: other }), 404);
    await json(await srv.api(`/instances/${mine.id}`, { method: 'DELETE', headers: other }), 404);

    // The other org's user cannot use this org's instance token.
    assert.equal(await hubPing(`User ${otherUserSecret}, Element ${mine.token}`), 401);
    assert.equal(await hubPing(`User ${otherUserSecret}, Organization ${otherOrgSecret}, Element ${mine.token}`), 401);
    // Mixing secrets across organizations is refused.
    const mixed = await srv.api('/instances', { headers: { authorization: `User ${otherUserSecret}, Organization ${ORG_SECRET}` } });
    assert.equal(mixed.status, 401);
    await mixed.arrayBuffer();

    const still = await json(await srv.api(`/instances/${mine.id}`));
    assert.equal(still.name, 'org-a');
    assert.equal(still.disabled, false);
    assert.equal(await hubPing(mine.auth), 200);

    // The other org can create its own instance, invisible to the first.
    const theirs = await json(
      await srv.api('/instances', { method: 'POST', headers: other, json: { element: { key: 'localfs' }, name: 'theirs', configuration: { root: 'org-b' } } }),
    );
    await json(await srv.api(`/instances/${theirs.id}`), 404);
  });

  it('keeps raw secrets out of the SQLite files; credentials.json is mode 0600', async () => {
    const marker = 'raw-signature-key-must-not-be-stored-7f3a9c';
    const a = await srv.instance('localfs', { root: 'at-rest', 'event.notification.signature.key': marker }, 'at-rest');
    await json(await srv.api(`/instances/${a.id}`, { method: 'PATCH', json: { name: 'at-rest-2' } }));
    const files = fs.readdirSync(srv.dataDir).filter((f) => f.startsWith('ferry.db'));
    assert.ok(files.includes('ferry.db'), `the SQLite file exists (${files.join(', ')})`);
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(srv.dataDir, f));
      for (const secret of [marker, a.token, USER_SECRET, ORG_SECRET]) {
        assert.equal(bytes.includes(Buffer.from(secret)), false, `${f} does not contain a raw secret`);
      }
    }
    const creds = path.join(srv.dataDir, 'credentials.json');
    assert.equal(fs.statSync(creds).mode & 0o777, 0o600);
    const parsed = JSON.parse(fs.readFileSync(creds, 'utf8'));
    assert.equal(parsed.userSecret, USER_SECRET);
    assert.equal(typeof parsed.organizationSecret, 'string');
  });
});
