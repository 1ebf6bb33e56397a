/**
 * Property-based tests (fast-check) of the pure functions every request passes through: object
 * id encoding through a real URL segment, path confinement, webhook signatures, the CEQL and
 * deliveries `where` parsers, the Authorization parser and the egress address check. Each
 * property runs many generated inputs; the suite prints how many properties and runs it checked.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { normalisePath, objectId, pathFromId } from '../../src/documents/paths.js';
import { parseWhere, parseOrderBy } from '../../src/documents/ceql.js';
import { parseDeliveryWhere } from '../../src/http/routes/events.js';
import { signNotification, verifyNotification } from '../../src/async/signing.js';
import { parseAuthorization } from '../../src/identity/authorization.js';
import { createEgressPolicy } from '../../src/async/egress.js';
import { checkCallbackUrl } from '../../src/async/accept.js';
import { isFerryError, type ErrorKind } from '../../src/errors.js';

const MAX_PATH = 4096;
let properties = 0;
let runs = 0;

/** fc.assert that counts the property and its runs. */
function check<T extends [unknown, ...unknown[]]>(property: fc.IProperty<T>, numRuns: number): void {
  fc.assert(property, { numRuns });
  properties += 1;
  runs += numRuns;
}

/** Calls `fn`; any throw must be a FerryError of `kind`. */
function onlyThrows(kind: ErrorKind, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!isFerryError(e, kind)) throw new Error(`threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

after(() => console.log(`# properties checked: ${properties}, runs: ${runs}`));

// A valid name: any Unicode text without "/", "\", control characters (C0, C1), bidirectional
// controls, lone surrogates, "." or "..".
const name = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 24 })
  .filter((s) => !/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069/\\]/.test(s) && s !== '.' && s !== '..' && Buffer.byteLength(s) <= 255);
const canonicalPath = fc.array(name, { minLength: 0, maxLength: 6 }).map((segs) => '/' + segs.join('/'));

test('ids: objectId → real URL segment → router decode → pathFromId is the path', () => {
  check(
    fc.property(canonicalPath, (p) => {
      const id = objectId(p);
      assert.ok(!/[/?#]/.test(id), 'an id never holds a separator');
      const url = new URL(`http://127.0.0.1/elements/api-v2/hubs/documents/files/${id}/metadata`);
      const segment = url.pathname.split('/')[6];
      assert.equal(segment, id, 'the URL parser leaves the id as is');
      // The router decodes a path parameter once, as find-my-way does.
      assert.equal(pathFromId(decodeURIComponent(segment), MAX_PATH), p);
    }),
    2000,
  );
});

test('paths: any string either is refused with invalid or normalises inside the root', () => {
  const hostile = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.array(fc.constantFrom('..', '.', '', 'a', '%2e%2e', '\\', '..\\', '\u0000', '\u202e', '\ud800', 'é', '/'), { maxLength: 12 }).map((p) => p.join('/')),
  );
  check(
    fc.property(hostile, (raw) => {
      let canonical: string;
      try {
        canonical = normalisePath(raw, MAX_PATH);
      } catch (e) {
        assert.ok(isFerryError(e, 'invalid'), `threw ${(e as Error).message}`);
        return;
      }
      assert.ok(canonical.startsWith('/'));
      assert.ok(!canonical.split('/').includes('..'));
      const root = '/srv/ferry/root';
      const resolved = path.posix.resolve(root, '.' + canonical);
      assert.ok(resolved === root || resolved.startsWith(root + '/'), `${raw} escaped to ${resolved}`);
      assert.equal(normalisePath(canonical, MAX_PATH), canonical, 'normalisation is idempotent');
    }),
    3000,
  );
});

const key = fc.string({ unit: 'binary', minLength: 1, maxLength: 64 });
const webhookId = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
const timestamp = fc.integer({ min: 0, max: 4_000_000_000 });
const body = fc.string({ unit: 'binary', maxLength: 400 });

test('signatures: anything signed verifies under both schemes', () => {
  check(
    fc.property(body, key, webhookId, timestamp, (b, k, id, ts) => {
      const headers = signNotification(b, k, id, ts);
      assert.deepEqual(verifyNotification(b, headers, k, { nowSeconds: ts }), { legacy: true, standard: true });
    }),
    1000,
  );
});

test('signatures: changing any one character of the body fails both schemes', () => {
  const mutation = fc.tuple(body.filter((b) => b.length > 0), fc.nat(), fc.integer({ min: 1, max: 0x10ffff }));
  check(
    fc.property(mutation, key, webhookId, timestamp, ([b, at, replacement], k, id, ts) => {
      const chars = [...b];
      const i = at % chars.length;
      let c = String.fromCodePoint(replacement);
      if (/[\ud800-\udfff]/.test(c) || c === chars[i]) c = chars[i] === 'x' ? 'y' : 'x';
      chars[i] = c;
      const tampered = chars.join('');
      const headers = signNotification(b, k, id, ts);
      assert.deepEqual(verifyNotification(tampered, headers, k, { nowSeconds: ts }), { legacy: false, standard: false });
    }),
    1000,
  );
});

test('signatures: flipping any bit of any byte of an ASCII body fails both schemes', () => {
  const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((n) => String.fromCharCode(n)), minLength: 1, maxLength: 300 });
  check(
    fc.property(ascii, fc.nat(), fc.integer({ min: 0, max: 6 }), key, webhookId, timestamp, (b, at, bit, k, id, ts) => {
      const bytes = Buffer.from(b, 'latin1');
      bytes[at % bytes.length] ^= 1 << bit;
      const tampered = bytes.toString('latin1');
      const headers = signNotification(b, k, id, ts);
      assert.deepEqual(verifyNotification(tampered, headers, k, { nowSeconds: ts }), { legacy: false, standard: false });
    }),
    1000,
  );
});

test('signatures: a different key, id or timestamp fails the standard scheme', () => {
  check(
    fc.property(body, key, key, webhookId, webhookId, timestamp, (b, k1, k2, id1, id2, ts) => {
      fc.pre(k1 !== k2 && id1 !== id2);
      const headers = signNotification(b, k1, id1, ts);
      assert.equal(verifyNotification(b, headers, k2, { nowSeconds: ts }).standard, false);
      assert.equal(verifyNotification(b, { ...headers, 'webhook-id': id2 }, k1, { nowSeconds: ts }).standard, false);
      assert.equal(verifyNotification(b, { ...headers, 'webhook-timestamp': String(ts + 1) }, k1, { nowSeconds: ts }).standard, false);
    }),
    500,
  );
});

// Strings that look like CEQL (so the parser gets deep), mixed with arbitrary text.
const ceqlToken = fc.constantFrom(
  'name', 'extension', 'directory', 'size', 'path', 'status', 'config.url', 'channel',
  '=', '!=', '<', '>', 'like', 'in', 'and', 'or', 'not', '(', ')', ',', "'", "''", "'a'", "'%'", '%', '_',
  'true', 'false', '1', '-1', '1e309', ' ', '\u0000', '\u202e', '\ud800', ';', '--', '"', '\\',
);
const whereText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.array(ceqlToken, { maxLength: 40 }).map((t) => t.join(' ')),
  fc.array(ceqlToken, { maxLength: 40 }).map((t) => t.join('')),
  fc.nat({ max: 3000 }).map((n) => '('.repeat(n) + "name='x'" + ')'.repeat(n)),
);
const sample = { name: 'report.txt', extension: 'txt', directory: false, size: 10, path: '/a/report.txt', createdDate: '', modifiedDate: '' };

test('CEQL where: any string parses or is refused with invalid; a parsed predicate never throws', () => {
  check(
    fc.property(whereText, (raw) => {
      onlyThrows('invalid', () => {
        const predicate = parseWhere(raw);
        assert.equal(typeof predicate(sample as any), 'boolean');
      });
    }),
    3000,
  );
});

test('CEQL orderBy: any string parses or is refused with invalid', () => {
  check(fc.property(whereText, (raw) => onlyThrows('invalid', () => parseOrderBy(raw))), 1000);
});

test('deliveries where: any string parses or is refused with invalid', () => {
  check(
    fc.property(whereText, (raw) => {
      onlyThrows('invalid', () => {
        const filter = parseDeliveryWhere(raw);
        for (const s of filter.status ?? []) assert.ok(['created', 'delivered', 'retry', 'queued'].includes(s));
      });
    }),
    3000,
  );
});

test('Authorization: any header parses or is refused with unauthenticated', () => {
  const header = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.array(fc.constantFrom('User', 'Organization', 'Element', 'user', ' ', ',', 'x', 'secret', '\t', '=', ';', '\u00e9'), { maxLength: 20 }).map((t) => t.join('')),
  );
  check(
    fc.property(header, (raw) => {
      onlyThrows('unauthenticated', () => {
        const creds = parseAuthorization(raw);
        for (const v of Object.values(creds)) assert.ok(typeof v === 'string' && v.length > 0 && !/\s|,/.test(v));
      });
    }),
    3000,
  );
});

// ---- egress -------------------------------------------------------------------------------------

/** A random IPv4 address inside `cidr`. */
function inRange(cidr: string): fc.Arbitrary<string> {
  const [base, bits] = cidr.split('/');
  const start = base.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return fc.integer({ min: 0, max: size - 1 }).map((offset) => {
    const n = start + offset;
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  });
}

const REFUSED_V4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.168.0.0/16', '224.0.0.0/4', '240.0.0.0/4',
];
const refusedV4 = fc.oneof(...REFUSED_V4.map(inRange));

test('egress: every IPv4 address in a private, loopback, link-local, CGNAT or multicast range is refused', () => {
  const policy = createEgressPolicy([]);
  check(
    fc.property(refusedV4, (ip) => {
      assert.equal(policy.checkAddress(ip, ip), false, ip);
      assert.equal(policy.checkAddress(ip, 'innocent.example.com'), false, `${ip} via a name`);
      assert.equal(policy.checkAddress(`::ffff:${ip}`, 'innocent.example.com'), false, `::ffff:${ip}`);
    }),
    5000,
  );
});

test('egress: those addresses are refused at accept time in every URL spelling (dotted, decimal, hex, mapped)', () => {
  const policy = createEgressPolicy([]);
  check(
    fc.property(refusedV4, fc.constantFrom('dotted', 'decimal', 'hex', 'mapped'), (ip, spelling) => {
      const n = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
      const host =
        spelling === 'dotted' ? ip : spelling === 'decimal' ? String(n) : spelling === 'hex' ? `0x${n.toString(16)}` : `[::ffff:${ip}]`;
      assert.throws(() => checkCallbackUrl(policy, `http://${host}/hook`), (e: unknown) => isFerryError(e, 'invalid'), host);
    }),
    2000,
  );
});

test('egress: an allow-list CIDR opens exactly its range', () => {
  const policy = createEgressPolicy(['10.1.0.0/16']);
  check(
    fc.property(inRange('10.0.0.0/8'), (ip) => {
      assert.equal(policy.checkAddress(ip, ip), ip.startsWith('10.1.'), ip);
    }),
    2000,
  );
});
