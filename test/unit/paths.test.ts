/**
 * Path normalisation, confinement and object ids (src/documents/paths.ts): tables of every
 * traversal spelling we could think of, properties checked with fast-check, and the id round
 * trip through a real URL and a real Fastify router.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import Fastify from 'fastify';
import {
  baseName,
  isWithin,
  joinPath,
  normalisePath,
  objectId,
  parentPath,
  pathFromId,
  validateName,
} from '../../src/documents/paths.js';
import { isFerryError } from '../../src/errors.js';

const MAX = 4096;

const isInvalid = (e: unknown) => isFerryError(e, 'invalid');

function assertInvalid(raw: string, pattern?: RegExp): void {
  assert.throws(
    () => normalisePath(raw, MAX),
    (e: unknown) => isInvalid(e) && (!pattern || pattern.test((e as Error).message)),
    `expected ${JSON.stringify(raw)} to be refused`,
  );
}

/** Canonical: "/" or "/"-prefixed non-empty segments, none "." or "..". */
function isCanonical(p: string): boolean {
  return p === '/' || (p.startsWith('/') && p.slice(1).split('/').every((s) => s !== '' && s !== '.' && s !== '..'));
}

describe('normalisePath', () => {
  const accepted: [string, string][] = [
    ['', '/'],
    ['/', '/'],
    ['//', '/'],
    ['.', '/'],
    ['/./', '/'],
    ['a', '/a'],
    ['/a', '/a'],
    ['/a/', '/a'],
    ['a/b/c.txt', '/a/b/c.txt'],
    ['//a///b//', '/a/b'],
    ['/a/./b/.', '/a/b'],
    ['/with space/ and more .txt', '/with space/ and more .txt'],
    ['/héllo/日本/🚀.txt', '/héllo/日本/🚀.txt'],
    ['/...', '/...'],
    ['/..a/a..', '/..a/a..'],
    ['/. ./.. /..x', '/. ./.. /..x'],
    // Percent sequences left after the HTTP layer's one decoding are literal name characters.
    ['/%2e%2e/x', '/%2e%2e/x'],
    ['/..%2fetc', '/..%2fetc'],
    ['/%2E%2E%2F%2E%2E%2Fetc', '/%2E%2E%2F%2E%2E%2Fetc'],
    ['/%00', '/%00'],
    ['/100% sure', '/100% sure'],
    ['/a:b*c?"<>|', '/a:b*c?"<>|'],
  ];
  for (const [raw, expected] of accepted) {
    it(`accepts ${JSON.stringify(raw)} as ${JSON.stringify(expected)}`, () => {
      assert.equal(normalisePath(raw, MAX), expected);
    });
  }

  const traversals = [
    '..',
    '/..',
    '../',
    '/../',
    '/../etc/passwd',
    '../../../../etc/passwd',
    'a/../../b',
    '/a/b/../../../c',
    '/a/..',
    '/a/../b', // stays inside, but every ".." is refused
    './..',
    '/./../x',
    '//..//x',
    decodeURIComponent('%2e%2e%2fetc'), // what "%2e%2e%2fetc" is after the HTTP layer's decoding
    decodeURIComponent('%2e%2e/%2e%2e/etc'),
    decodeURIComponent('..%2f..%2fetc'),
  ];
  for (const raw of traversals) {
    it(`refuses traversal ${JSON.stringify(raw)} saying the path must stay in the root`, () => {
      assertInvalid(raw, /inside the instance's root/);
    });
  }

  const badCharacters = [
    '/a\\..\\b',
    '\\..\\etc',
    '/..\\',
    '/a\\b',
    'C:\\Windows',
    '/a\u0000b',
    '/a\u0000/../../etc',
    '/x\u0001',
    '/tab\there',
    '/new\nline',
    '/cr\r',
    '/del\u007f',
    '/escape\u001b[31m',
    '/lone\ud800surrogate',
    '/\udc00',
    '/c1\u0085next-line',
    '/c1\u009bcsi',
    '/invoice\u202efdp.exe',
    '/isolate\u2066x\u2069',
    '/embed\u202ax',
  ];
  for (const raw of badCharacters) {
    it(`refuses ${JSON.stringify(raw)} (bad character)`, () => assertInvalid(raw));
  }

  it('refuses a name over 255 UTF-8 bytes and accepts one of exactly 255', () => {
    assert.equal(normalisePath('/' + 'a'.repeat(255), MAX), '/' + 'a'.repeat(255));
    assertInvalid('/' + 'a'.repeat(256), /255 bytes/);
    // 85 × 3-byte characters = 255 bytes; 86 = 258.
    assert.equal(normalisePath('/' + '日'.repeat(85), MAX).length, 86);
    assertInvalid('/' + '日'.repeat(86), /255 bytes/);
    // 64 × 4-byte emoji = 256 bytes although only 128 UTF-16 units.
    assertInvalid('/' + '🚀'.repeat(64), /255 bytes/);
  });

  it('refuses a path over maxLength and accepts one at it', () => {
    const segment = 'x'.repeat(99);
    const path = ('/' + segment).repeat(10); // 1000 characters
    assert.equal(normalisePath(path, 1000), path);
    assert.throws(() => normalisePath(path + '/y', 1000), (e: unknown) => isInvalid(e) && /1000/.test((e as Error).message));
  });

  it('counts the normalised length, not redundant slashes', () => {
    assert.equal(normalisePath('///a///', 2), '/a');
  });

  it('names a bidirectional control character for what it is', () => {
    assertInvalid('/docs/invoice\u202efdp.exe', /bidirectional control character U\+202E/);
  });

  it('never echoes control characters in its messages', () => {
    try {
      normalisePath('/a\u0000\u001b[2J', MAX);
      assert.fail('should throw');
    } catch (e) {
      assert.ok(isInvalid(e));
      assert.doesNotMatch((e as Error).message, /[\u0000-\u001f]/);
    }
  });

  it('property: any output is canonical and idempotent', () => {
    const chars = fc.constantFrom('a', 'b', '/', '.', ' ', '%', '2', 'e', 'f', 'é', '日', '\\', '\u0000', '\n');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 30 }).map((a) => a.join('')), (raw) => {
        let out: string;
        try {
          out = normalisePath(raw, MAX);
        } catch (e) {
          assert.ok(isInvalid(e));
          return;
        }
        assert.ok(isCanonical(out), out);
        assert.equal(normalisePath(out, MAX), out);
        assert.ok(!out.includes('\\') && !out.includes('\u0000') && !out.includes('\n'));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: a path joined with ".." segments never normalises out of the root', () => {
    const segment = fc.oneof(fc.constantFrom('..', '.', '', 'a', 'b c', '...', '%2e%2e'), fc.string({ maxLength: 5 }));
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 12 }), (segments) => {
        const raw = segments.join('/');
        try {
          const out = normalisePath(raw, MAX);
          assert.ok(!out.split('/').includes('..'));
          assert.ok(!segments.includes('..'), 'a ".." segment was accepted');
        } catch (e) {
          assert.ok(isInvalid(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('validateName and joinPath', () => {
  for (const good of ['a', 'b.txt', 'with space', '...', '日本', '%2f', '-x']) {
    it(`accepts the name ${JSON.stringify(good)}`, () => assert.equal(validateName(good), good));
  }
  for (const bad of ['', '.', '..', 'a/b', '/', 'a\\b', 'a\u0000', 'x'.repeat(256), '\ud800']) {
    it(`refuses the name ${JSON.stringify(bad.slice(0, 20))}`, () => {
      assert.throws(() => validateName(bad), isInvalid);
    });
  }
  it('joins names under folders', () => {
    assert.equal(joinPath('/', 'a'), '/a');
    assert.equal(joinPath('/a/b', 'c d.txt'), '/a/b/c d.txt');
    assert.throws(() => joinPath('/a', '..'), isInvalid);
    assert.throws(() => joinPath('/a', 'x/../../y'), isInvalid);
  });
});

describe('parentPath, baseName, isWithin', () => {
  it('parentPath', () => {
    assert.equal(parentPath('/'), null);
    assert.equal(parentPath('/a'), '/');
    assert.equal(parentPath('/a/b'), '/a');
    assert.equal(parentPath('/a/b/c.txt'), '/a/b');
  });
  it('baseName', () => {
    assert.equal(baseName('/'), '');
    assert.equal(baseName('/a'), 'a');
    assert.equal(baseName('/a/b c.txt'), 'b c.txt');
  });
  it('isWithin', () => {
    assert.equal(isWithin('/a', '/'), true);
    assert.equal(isWithin('/', '/'), true);
    assert.equal(isWithin('/a', '/a'), true);
    assert.equal(isWithin('/a/b', '/a'), true);
    assert.equal(isWithin('/ab', '/a'), false);
    assert.equal(isWithin('/a', '/a/b'), false);
    assert.equal(isWithin('/', '/a'), false);
  });
});

describe('object ids', () => {
  it('encodes the path twice', () => {
    assert.equal(objectId('/'), '%252F');
    assert.equal(objectId('/a/b.txt'), '%252Fa%252Fb.txt');
    assert.equal(objectId('/a b'), '%252Fa%2520b');
    assert.equal(objectId('/100%'), '%252F100%2525');
  });

  it('pathFromId decodes what the router hands over', () => {
    assert.equal(pathFromId('%2Fa%2Fb.txt', MAX), '/a/b.txt');
    assert.equal(pathFromId('%2F', MAX), '/');
    // A client that encoded only once still lands on the same path.
    assert.equal(pathFromId('/a/b.txt', MAX), '/a/b.txt');
  });

  it('pathFromId refuses malformed encodings and traversal', () => {
    for (const bad of ['%', '%2', '%E0%A4%A', '%zz', '%2F..%2Fetc', '..', '%2F%2E%2E%2Fetc', '%2Fa%5C..%5Cb', '%2Fa%00']) {
      assert.throws(() => pathFromId(bad, MAX), isInvalid, bad);
    }
  });

  it('round trip through a URL: id in a path segment, decoded once, then pathFromId', () => {
    const paths = ['/', '/a', '/a b/c d.txt', '/100% #1 ?&+=.txt', '/%2e%2e/x', '/héllo/日本/🚀', '/a;b,c@d$e!'];
    for (const p of paths) {
      const url = new URL(`http://ferry.test/elements/api-v2/hubs/documents/files/${objectId(p)}/metadata`);
      const segment = url.pathname.split('/')[6];
      assert.equal(segment, objectId(p), 'the id survives URL parsing unchanged');
      assert.equal(pathFromId(decodeURIComponent(segment), MAX), p);
    }
  });

  it('round trip through the real router (Fastify)', async () => {
    const app = Fastify();
    app.get('/files/:id/metadata', async (req) => {
      try {
        return { path: pathFromId((req.params as { id: string }).id, MAX) };
      } catch (e) {
        return { error: isFerryError(e) ? e.kind : String(e) };
      }
    });
    await app.ready();
    try {
      const paths = ['/', '/a/b.txt', '/a b/c d.txt', '/100% #1 ?&+=.txt', '/%2e%2e/x', '/héllo/日本/🚀', '/x%2Fy'];
      for (const p of paths) {
        const res = await app.inject({ method: 'GET', url: `/files/${objectId(p)}/metadata` });
        assert.equal(res.statusCode, 200, p);
        assert.equal(res.json().path, p);
      }
      // A traversal smuggled in an id does not get through.
      const res = await app.inject({ method: 'GET', url: `/files/${encodeURIComponent(encodeURIComponent('/../etc'))}/metadata` });
      assert.deepEqual(res.json(), { error: 'invalid' });
      const single = await app.inject({ method: 'GET', url: `/files/${encodeURIComponent('/../etc')}/metadata` });
      assert.deepEqual(single.json(), { error: 'invalid' });
    } finally {
      await app.close();
    }
  });

  it('property: pathFromId(decode(objectId(p))) = p for canonical paths', () => {
    const segment = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => {
      try {
        return validateName(s) === s;
      } catch {
        return false;
      }
    });
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        const p = '/' + segments.join('/');
        const id = objectId(p);
        assert.match(id, /^[A-Za-z0-9%._~!*'()-]*$/, 'an id is URL-safe');
        assert.equal(pathFromId(decodeURIComponent(id), MAX), p);
      }),
      { numRuns: 1000 },
    );
  });
});
