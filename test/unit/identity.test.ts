import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseAuthorization } from '../../src/identity/authorization.js';
import { MasterKey } from '../../src/identity/crypto.js';
import { hashSecret, newSecret, safeEqual } from '../../src/identity/secrets.js';
import { isFerryError } from '../../src/errors.js';

test('Authorization: parts in any order, any case, spaces tolerated', () => {
  assert.deepEqual(parseAuthorization('User u, Organization o'), { user: 'u', organization: 'o' });
  assert.deepEqual(parseAuthorization('  element   t ,user u,ORGANIZATION o '), { user: 'u', organization: 'o', element: 't' });
});

test('Authorization: malformed headers are 401 with the right form in the message', () => {
  for (const bad of [undefined, '', 'Bearer x', 'User', 'User a b', 'User a, User b', 'User a,, Organization b', 'Foo a']) {
    assert.throws(
      () => parseAuthorization(bad),
      (e: unknown) => isFerryError(e, 'unauthenticated') && /User|Authorization/.test((e as Error).message),
      String(bad),
    );
  }
});

test('Authorization: property — a well-formed header in any order round-trips', () => {
  const token = fc.stringMatching(/^[A-Za-z0-9_\-=+/.]{1,64}$/);
  fc.assert(
    fc.property(token, token, token, fc.boolean(), (u, o, e, upper) => {
      const name = (n: string) => (upper ? n.toUpperCase() : n);
      const parts = [`${name('User')} ${u}`, `${name('Organization')} ${o}`, `${name('Element')} ${e}`];
      const header = parts.reverse().join(' , ');
      assert.deepEqual(parseAuthorization(header), { user: u, organization: o, element: e });
    }),
    { numRuns: 300 },
  );
});

test('secrets are random, hashed with SHA-256, compared in constant time', () => {
  const a = newSecret();
  assert.equal(a.length, 43);
  assert.notEqual(a, newSecret());
  assert.match(hashSecret(a), /^[0-9a-f]{64}$/);
  assert.ok(safeEqual(a, a));
  assert.ok(!safeEqual(a, a + 'x'));
  assert.ok(!safeEqual(a, newSecret()));
});

test('master key: round trip, fresh IV each time, tampering detected, wrong key refused', () => {
  const key = MasterKey.generate();
  const sealed = key.encrypt('s3cret-value');
  assert.ok(sealed.startsWith('enc:v1:'));
  assert.ok(!sealed.includes('s3cret'));
  assert.notEqual(sealed, key.encrypt('s3cret-value'));
  assert.equal(key.decrypt(sealed), 's3cret-value');
  const parts = sealed.split(':');
  parts[4] = Buffer.from('tampered').toString('base64url');
  assert.throws(() => key.decrypt(parts.join(':')));
  assert.throws(() => MasterKey.generate().decrypt(sealed));
  assert.throws(() => MasterKey.fromBase64('dG9vIHNob3J0'), /32 bytes/);
});
