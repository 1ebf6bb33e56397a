/**
 * The export CEQL (src/bulk/query.ts): every documented field and operator, and 400s naming the
 * token at fault.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExportQuery, type Queryable } from '../../src/bulk/query.js';
import { isFerryError } from '../../src/errors.js';

const file = (path: string, size: number, modified = '2024-06-01T00:00:00Z'): Queryable => ({
  path,
  name: path.split('/').pop()!,
  directory: false,
  size,
  createdDate: new Date('2024-01-01T00:00:00Z'),
  modifiedDate: new Date(modified),
});
const folder = (path: string): Queryable => ({ path, name: path.split('/').pop()!, directory: true, size: 0 });
const objects = [file('/photos/a.JPG', 2000), file('/photos/b.png', 500), file('/docs/c.txt', 5000, '2023-01-01T00:00:00Z'), folder('/photos')];
const run = (q: string) => objects.filter(parseExportQuery(q).matches).map((o) => o.path);

test('fields and operators that work', () => {
  assert.deepEqual(run('select * from files'), ['/photos/a.JPG', '/photos/b.png', '/docs/c.txt', '/photos']);
  assert.deepEqual(run("SELECT * FROM documents WHERE path LIKE '/photos/%'"), ['/photos/a.JPG', '/photos/b.png']);
  assert.deepEqual(run("select * from files where path like '/photos/%' and size > 1000"), ['/photos/a.JPG']);
  assert.deepEqual(run('select * from files where size <= 2000'), ['/photos/a.JPG', '/photos/b.png']);
  assert.deepEqual(run('select * from files where size != 500 and directory = false'), ['/photos/a.JPG', '/docs/c.txt']);
  assert.deepEqual(run("select * from files where extension in ('jpg', 'txt')"), ['/photos/a.JPG', '/docs/c.txt']);
  assert.deepEqual(run("select * from files where name = 'b.png'"), ['/photos/b.png']);
  assert.deepEqual(run("select * from files where name != 'b.png' and directory = false"), ['/photos/a.JPG', '/docs/c.txt']);
  assert.deepEqual(run('select * from files where directory = true'), ['/photos']);
  assert.deepEqual(run("select * from files where modifiedDate < '2024-01-01T00:00:00Z'"), ['/docs/c.txt']);
  assert.deepEqual(run("select * from files where createdDate >= '2024-01-01'"), ['/photos/a.JPG', '/photos/b.png', '/docs/c.txt']);
});

test('a query that does not parse is a 400 naming the token and its position', () => {
  const refused = (q: string, pattern: RegExp) =>
    assert.throws(() => parseExportQuery(q), (e: unknown) => isFerryError(e, 'invalid') && pattern.test(e.message));
  refused('select name from files', /expected "\*" at position 8, found "name"/);
  refused('select * from folders', /unknown object "folders"/);
  refused("select * from files where colour = 'red'", /unknown field "colour" at position 27/);
  refused('select * from files where size > big', /expected a number of bytes at position 34, found "big"/);
  refused("select * from files where modifiedDate > 'yesterday'", /ISO-8601/);
  refused("select * from files where name = 'a' or name = 'b'", /expected "and" or the end of the query at position 38, found "or"/);
  refused("select * from files where path like '/x", /unterminated string/);
  refused('select * from files where size ~ 3', /expected a comparison/);
});
