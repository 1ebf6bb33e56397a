/**
 * The CEQL `where` subset and the `orderBy` list (src/documents/ceql.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { extensionOf, parseOrderBy, parseWhere, type Sortable } from '../../src/documents/ceql.js';
import { isFerryError } from '../../src/errors.js';

const objects = [
  { name: 'report.txt', directory: false },
  { name: 'Report.TXT', directory: false },
  { name: 'photo.JPG', directory: false },
  { name: 'archive.tar.gz', directory: false },
  { name: '.profile', directory: false },
  { name: 'README', directory: false },
  { name: "it's.md", directory: false },
  { name: 'a_b%c.txt', directory: false },
  { name: 'docs', directory: true },
  { name: 'folder.txt', directory: true },
  { name: '日本語.txt', directory: false },
];

function names(where: string): string[] {
  const match = parseWhere(where);
  return objects.filter(match).map((o) => o.name);
}

function assertInvalid(where: string, pattern?: RegExp): void {
  assert.throws(
    () => parseWhere(where),
    (e: unknown) => isFerryError(e, 'invalid') && (!pattern || pattern.test(e.message)),
    `expected ${JSON.stringify(where)} to be refused`,
  );
}

describe('CEQL where', () => {
  it('name = is exact', () => {
    assert.deepEqual(names("name='report.txt'"), ['report.txt']);
    assert.deepEqual(names("name = 'docs'"), ['docs']);
    assert.deepEqual(names("name='nothing'"), []);
  });

  it("quotes: '' and \"\" escape, double quotes accepted", () => {
    assert.deepEqual(names("name='it''s.md'"), ["it's.md"]);
    assert.deepEqual(names('name="it\'s.md"'), ["it's.md"]);
    assert.deepEqual(names('name="say ""hi"""'), []);
    assert.ok(parseWhere('name="say ""hi"""')({ name: 'say "hi"', directory: false }));
  });

  it('like: % any run, _ one character, case-insensitive', () => {
    assert.deepEqual(names("name like 'report%'"), ['report.txt', 'Report.TXT']);
    assert.deepEqual(names("name like '%.txt'"), ['report.txt', 'Report.TXT', 'a_b%c.txt', 'folder.txt', '日本語.txt']);
    assert.deepEqual(names("name like 'r_adme'"), ['README']);
    assert.deepEqual(names("name like '%'"), objects.map((o) => o.name));
    assert.deepEqual(names("name like '___.txt'"), ['日本語.txt'], '_ is one character, not one byte');
    assert.deepEqual(names("name like '%a%r%c%'"), ['archive.tar.gz']);
    assert.deepEqual(names("name like ''"), []);
    assert.deepEqual(names("NAME LIKE 'DOCS'"), ['docs']);
  });

  it('like is linear on hostile patterns', () => {
    const match = parseWhere(`name like '${'%a'.repeat(200)}b'`);
    const started = Date.now();
    assert.equal(match({ name: 'a'.repeat(255), directory: false }), false);
    assert.ok(Date.now() - started < 500, 'like took too long');
  });

  it('in', () => {
    assert.deepEqual(names("name in ('docs', 'README', 'missing')"), ['README', 'docs']);
    assert.deepEqual(names("name IN ('report.txt')"), ['report.txt']);
  });

  it('extension: without or with dot, case-insensitive, never a folder', () => {
    assert.deepEqual(names("extension='txt'"), ['report.txt', 'Report.TXT', 'a_b%c.txt', '日本語.txt']);
    assert.deepEqual(names("extension='.TXT'"), ['report.txt', 'Report.TXT', 'a_b%c.txt', '日本語.txt']);
    assert.deepEqual(names("extension='gz'"), ['archive.tar.gz']);
    assert.deepEqual(names("extension=''"), ['.profile', 'README']);
    assert.deepEqual(names("extension in ('jpg', '.md')"), ['photo.JPG', "it's.md"]);
    assert.deepEqual(names("extension like 'j%'"), ['photo.JPG']);
  });

  it('directory', () => {
    assert.deepEqual(names('directory=true'), ['docs', 'folder.txt']);
    assert.deepEqual(names('directory = FALSE').length, objects.length - 2);
    assert.deepEqual(names("directory='true'"), ['docs', 'folder.txt']);
  });

  it('and joins clauses (any case)', () => {
    assert.deepEqual(names("directory=false and name like 'r%'"), ['report.txt', 'Report.TXT', 'README']);
    assert.deepEqual(names("directory=false AND name like 'r%' And extension='txt'"), ['report.txt', 'Report.TXT']);
  });

  it('extensionOf', () => {
    assert.equal(extensionOf('a.txt'), 'txt');
    assert.equal(extensionOf('a.tar.gz'), 'gz');
    assert.equal(extensionOf('.profile'), '');
    assert.equal(extensionOf('README'), '');
    assert.equal(extensionOf('trailing.'), '');
  });

  const refused: [string, RegExp][] = [
    ['', /empty/],
    ['   ', /empty/],
    ["name='a' or name='b'", /position 10.*"or"/],
    ["size > 10", /unknown field "size"/],
    ["name != 'a'", /expected "=", "like" or "in" at position 6, found "!"/],
    ["name = a", /expected a quoted string at position 8/],
    ["name = 'unterminated", /unterminated string starting at position 8/],
    ["name like 5", /expected a quoted string at position 11, found "5"/],
    ["name in 'a'", /expected "\(" at position 9/],
    ["name in ('a' 'b')", /expected "\)"/],
    ["name in ()", /quoted string/],
    ["name='a' and", /end of the expression/],
    ["and name='a'", /unknown field "and" at position 1/],
    ["directory=maybe", /true or false/],
    ['directory like true', /"="/],
    ["(name='a')", /expected a field \(name, extension, directory\) at position 1, found "\("/],
    ["name='a';drop table x", /position 9, found ";"/],
    ["name='a'\u0000", /found the character U\+0000/],
    ["name='a' name='b'", /"and" or the end/],
    ["name", /expected "=", "like" or "in"/],
  ];
  for (const [where, pattern] of refused) {
    it(`refuses ${JSON.stringify(where)}`, () => assertInvalid(where, pattern));
  }

  it('error messages list what is supported', () => {
    assertInvalid("name='a' or name='b'", /supported: name='x', name like 'a%', name in \('a','b'\), extension='txt', directory=true\|false, joined by and/);
  });

  it('caps length, clauses and in-list size', () => {
    assertInvalid(`name='${'x'.repeat(2000)}'`, /2000/);
    const fifty = Array.from({ length: 50 }, (_, i) => `name like '%${i}%'`).join(' and ');
    assert.ok(fifty.length <= 2000);
    parseWhere(fifty);
    assertInvalid(fifty + " and name='x'", /more than 50 clauses/);
    const many = `name in (${Array.from({ length: 501 }, () => "''").join(',')})`;
    assertInvalid(many, /more than 500 values/);
  });

  it('property: arbitrary text either parses or fails with invalid, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        try {
          parseWhere(text);
        } catch (e) {
          assert.ok(isFerryError(e, 'invalid'), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("property: name = 'x' matches exactly x, whatever x holds", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (x, other) => {
        const match = parseWhere(`name = '${x.replace(/'/g, "''")}'`);
        assert.equal(match({ name: x, directory: false }), true);
        assert.equal(match({ name: other, directory: false }), other === x);
      }),
    );
  });
});

describe('CEQL orderBy', () => {
  const d = (s: string) => new Date(s);
  const items: Sortable[] = [
    { name: 'b.txt', path: '/b.txt', size: 30, directory: false, createdDate: d('2024-01-02'), modifiedDate: d('2024-03-01') },
    { name: 'a.txt', path: '/a.txt', size: 10, directory: false, createdDate: d('2024-01-01'), modifiedDate: d('2024-03-03') },
    { name: 'c', path: '/c', size: 0, directory: true, modifiedDate: d('2024-03-02') },
    { name: 'a.txt', path: '/z/a.txt', size: 10, directory: false, createdDate: d('2024-01-03'), modifiedDate: d('2024-03-03') },
    { name: 'B.txt', path: '/B.txt', size: 20, directory: false },
  ];
  const order = (raw: string) => [...items].sort(parseOrderBy(raw)).map((i) => i.path);

  it('name, ties broken by path', () => {
    assert.deepEqual(order('name'), ['/B.txt', '/a.txt', '/z/a.txt', '/b.txt', '/c']);
    assert.deepEqual(order('name asc'), order('name'));
    assert.deepEqual(order('NAME DESC'), ['/c', '/b.txt', '/a.txt', '/z/a.txt', '/B.txt']);
  });

  it('size desc, then name', () => {
    assert.deepEqual(order('size desc, name'), ['/b.txt', '/B.txt', '/a.txt', '/z/a.txt', '/c']);
  });

  it('dates: missing dates last in either direction', () => {
    assert.deepEqual(order('modifiedDate desc, name'), ['/a.txt', '/z/a.txt', '/c', '/b.txt', '/B.txt']);
    assert.deepEqual(order('modifiedDate'), ['/b.txt', '/c', '/a.txt', '/z/a.txt', '/B.txt']);
    assert.deepEqual(order('createdDate desc'), ['/z/a.txt', '/b.txt', '/a.txt', '/B.txt', '/c']);
  });

  it('directory and path', () => {
    assert.deepEqual(order('directory desc, path'), ['/c', '/B.txt', '/a.txt', '/b.txt', '/z/a.txt']);
    assert.deepEqual(order('path desc'), ['/z/a.txt', '/c', '/b.txt', '/a.txt', '/B.txt']);
  });

  it('empty orders by path', () => {
    assert.deepEqual(order(''), ['/B.txt', '/a.txt', '/b.txt', '/c', '/z/a.txt']);
  });

  for (const bad of ['owner', 'name up', 'name asc desc', 'name,', ',name', 'name, name desc', 'size;drop', 'x'.repeat(600)]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 30))}, naming the allowed fields`, () => {
      assert.throws(
        () => parseOrderBy(bad),
        (e: unknown) => isFerryError(e, 'invalid') && /name, size, createdDate, modifiedDate, directory, path/.test(e.message),
      );
    });
  }
});
