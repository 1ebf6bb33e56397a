/**
 * The CEQL of an export (`POST /bulk/query?q=`, issue 17):
 *
 *   select * from files [where clause (and clause)*]
 *
 * Fields and operators that work (keywords and fields case-insensitive):
 * - `name`, `extension`: `=`, `like`, `in (...)` — exactly as `GET /folders/contents?where=`
 *   (documents/ceql.ts does the matching: `like` is case-insensitive, `%` and `_` wildcards);
 * - `path`: the same operators on the object's whole path (`path like '/photos/%'`);
 * - `directory`: `= true | false`;
 * - `size`: `=`, `!=`, `<`, `<=`, `>`, `>=` with a number of bytes;
 * - `modifiedDate`, `createdDate`: the same comparisons with an ISO-8601 date in quotes.
 * `from files` lists files and folders alike (filter with `directory = false`); `documents` and
 * `objects` are accepted as synonyms. A query that does not parse is a 400 naming the token at
 * fault and its position.
 */
import { invalid } from '../errors.js';
import { parseWhere, readQuoted, MAX_WHERE_LENGTH, MAX_CLAUSES } from '../documents/ceql.js';

/** What an export's predicate looks at: an object as the walk yields it. */
export interface Queryable {
  path: string;
  name: string;
  directory: boolean;
  size: number;
  createdDate?: Date;
  modifiedDate?: Date;
}

const SUPPORTED =
  "supported: select * from files where <clause> and <clause> …, clauses name|path|extension = 'x' / like 'a%' / in ('a','b'), directory = true|false, size|createdDate|modifiedDate =|!=|<|<=|>|>= value";

type Token = { kind: 'word' | 'string' | 'number' | 'symbol' | 'end'; text: string; pos: number; raw: string };

function fail(message: string): never {
  throw invalid(`q: ${message}; ${SUPPORTED}`);
}

function show(t: Token): string {
  if (t.kind === 'end') return 'the end of the query';
  const text = t.raw.length > 40 ? t.raw.slice(0, 40) + '…' : t.raw;
  return `"${text.replace(/[\u0000-\u001f\u007f]/g, '?')}"`;
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const start = i;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'" || c === '"') {
      const quoted = readQuoted(source, start, fail);
      i = quoted.end;
      tokens.push({ kind: 'string', text: quoted.text, pos: start + 1, raw: source.slice(start, i) });
    } else if (/[0-9-]/.test(c)) {
      while (i < source.length && /[0-9.eE+-]/.test(source[i])) i++;
      tokens.push({ kind: 'number', text: source.slice(start, i), pos: start + 1, raw: source.slice(start, i) });
    } else if (/[A-Za-z_]/.test(c)) {
      while (i < source.length && /[A-Za-z0-9_]/.test(source[i])) i++;
      tokens.push({ kind: 'word', text: source.slice(start, i), pos: start + 1, raw: source.slice(start, i) });
    } else {
      const two = source.slice(i, i + 2);
      const text = ['<=', '>=', '!=', '<>'].includes(two) ? two : c;
      i += text.length;
      tokens.push({ kind: 'symbol', text, pos: start + 1, raw: text });
    }
  }
  tokens.push({ kind: 'end', text: '', pos: source.length + 1, raw: '' });
  return tokens;
}

type Predicate = (o: Queryable) => boolean;
const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<>': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** A parsed export query. */
export interface ExportQuery {
  /** The query as given. */
  text: string;
  /** True when the query has no `where`: every object matches. */
  everything: boolean;
  matches: Predicate;
}

/** Parses `q`, or throws `invalid` naming the token at fault. */
export function parseExportQuery(q: string): ExportQuery {
  if (q.length > MAX_WHERE_LENGTH + 100) fail(`the query is ${q.length} characters long; the limit is ${MAX_WHERE_LENGTH + 100}`);
  const tokens = tokenize(q);
  let i = 0;
  const next = () => tokens[Math.min(i++, tokens.length - 1)];
  const peek = () => tokens[i];
  const word = (t: Token, w: string) => t.kind === 'word' && t.text.toLowerCase() === w;
  const expect = (w: string, what = `"${w}"`) => {
    const t = next();
    if (!(word(t, w) || (t.kind === 'symbol' && t.text === w))) fail(`expected ${what} at position ${t.pos}, found ${show(t)}`);
  };
  expect('select');
  expect('*');
  expect('from');
  const object = next();
  if (!(object.kind === 'word' && ['files', 'documents', 'objects'].includes(object.text.toLowerCase()))) {
    fail(`unknown object ${show(object)} at position ${object.pos}: query "files"`);
  }
  const clauses: Predicate[] = [];
  if (peek().kind !== 'end') {
    expect('where', '"where" or the end of the query');
    for (;;) {
      if (clauses.length >= MAX_CLAUSES) fail(`more than ${MAX_CLAUSES} clauses`);
      clauses.push(clause());
      const t = peek();
      if (t.kind === 'end') break;
      if (!word(t, 'and')) fail(`expected "and" or the end of the query at position ${t.pos}, found ${show(t)}`);
      next();
    }
  }
  return { text: q, everything: clauses.length === 0, matches: (o) => clauses.every((c) => c(o)) };

  function clause(): Predicate {
    const field = next();
    if (field.kind !== 'word') fail(`expected a field at position ${field.pos}, found ${show(field)}`);
    const name = field.text.toLowerCase();
    if (name === 'name' || name === 'extension' || name === 'directory' || name === 'path') return textClause(field, name);
    if (name === 'size' || name === 'createddate' || name === 'modifieddate') return comparison(field, name);
    fail(`unknown field ${show(field)} at position ${field.pos}`);
  }

  /** A clause of documents/ceql.ts's grammar: its tokens handed to parseWhere as text. */
  function textClause(field: Token, name: string): Predicate {
    const from = i;
    const op = next();
    let negate = false;
    if (op.kind === 'symbol' && (op.text === '!=' || op.text === '<>') && name !== 'directory') negate = true;
    else if (!(op.kind === 'symbol' && op.text === '=') && !word(op, 'like') && !word(op, 'in')) {
      fail(`expected "=", "like" or "in" after ${show(field)} at position ${op.pos}, found ${show(op)}`);
    }
    if (word(op, 'in')) {
      while (peek().kind !== 'end' && !(peek().kind === 'symbol' && peek().text === ')')) next();
      next();
    } else {
      next();
    }
    const rest = tokens.slice(from, i).map((t) => t.raw);
    if (negate) rest[0] = '=';
    const ceqlField = name === 'path' ? 'name' : name;
    let inner: (o: { name: string; directory: boolean }) => boolean;
    try {
      inner = parseWhere(`${ceqlField} ${rest.join(' ')}`);
    } catch {
      fail(`the clause starting with ${show(field)} at position ${field.pos} is not valid`);
    }
    const pick = name === 'path' ? (o: Queryable) => ({ name: o.path, directory: o.directory }) : (o: Queryable) => o;
    return negate ? (o) => !inner(pick(o)) : (o) => inner(pick(o));
  }

  function comparison(field: Token, name: string): Predicate {
    const op = next();
    const compare = op.kind === 'symbol' ? COMPARE[op.text] : undefined;
    if (!compare) fail(`expected a comparison (=, !=, <, <=, >, >=) after ${show(field)} at position ${op.pos}, found ${show(op)}`);
    const value = next();
    if (name === 'size') {
      const n = Number(value.text);
      if (value.kind !== 'number' || !Number.isFinite(n)) fail(`expected a number of bytes at position ${value.pos}, found ${show(value)}`);
      return (o) => !o.directory && compare(o.size, n);
    }
    const ms = value.kind === 'string' ? Date.parse(value.text) : NaN;
    if (Number.isNaN(ms)) fail(`expected an ISO-8601 date in quotes at position ${value.pos}, found ${show(value)}`);
    const get = name === 'createddate' ? (o: Queryable) => o.createdDate : (o: Queryable) => o.modifiedDate;
    return (o) => {
      const d = get(o);
      return d !== undefined && compare(d.getTime(), ms);
    };
  }
}
