/**
 * The CEQL subset of `GET /folders/contents` (DESIGN §1.4): the `where` filter and the
 * `orderBy` list. Both are parsed once per request into plain functions the documents service
 * applies to the objects it lists, the same way for every element.
 *
 * `where` grammar (keywords and field names case-insensitive):
 *   expr    := clause ("and" clause)*
 *   clause  := field "=" value | field "like" string | field "in" "(" string ("," string)* ")"
 *   field   := name | extension | directory
 * - Strings are in single quotes (a quote inside doubled: 'it''s') or double quotes ("a""b").
 * - `name =` and `name in` compare exactly (file systems are case-sensitive);
 *   `like` is case-insensitive, `%` matches any run of characters, `_` exactly one. There is no
 *   escape for `%` and `_`: they are always wildcards.
 * - `extension` is what follows the last "." of a file's name, compared case-insensitively,
 *   given with or without its dot ('txt' or '.txt'); a name without a dot (or only a leading
 *   one, ".profile") has the extension ''. Folders have no extension: an extension clause never
 *   matches a folder.
 * - `directory` takes true or false (bare or quoted).
 * Limits keep a hostile expression cheap: 2,000 characters, 50 clauses, 500 values per `in`.
 * `like` is matched by a linear-backtracking wildcard matcher, never a RegExp, so no pattern
 * can make matching exponential.
 */
import { invalid } from '../errors.js';

/** What a `where` predicate looks at. */
export interface Filterable {
  name: string;
  directory: boolean;
}

/** What an `orderBy` comparator looks at. */
export interface Sortable extends Filterable {
  path: string;
  size: number;
  createdDate?: Date;
  modifiedDate?: Date;
}

export const MAX_WHERE_LENGTH = 2000;
export const MAX_CLAUSES = 50;
export const MAX_IN_VALUES = 500;
export const MAX_ORDER_BY_LENGTH = 500;

const SUPPORTED =
  "supported: name='x', name like 'a%', name in ('a','b'), extension='txt', directory=true|false, joined by and";

type Token =
  | { kind: 'word'; text: string; pos: number }
  | { kind: 'string'; text: string; pos: number }
  | { kind: 'symbol'; text: '=' | '(' | ')' | ','; pos: number }
  | { kind: 'other'; text: string; pos: number } // a character outside the grammar
  | { kind: 'end'; pos: number };

function fail(message: string): never {
  throw invalid(`where: ${message}; ${SUPPORTED}`);
}

/**
 * The string literal opening at `start` (a ' or " quote; a doubled quote stands for itself):
 * its text and the index just past its closing quote. Shared by every CEQL tokenizer (the
 * `where` subset here, bulk queries in bulk/query.ts); `fail` reports an unterminated one.
 */
export function readQuoted(source: string, start: number, fail: (message: string) => never): { text: string; end: number } {
  const quote = source[start];
  let text = '';
  let i = start + 1;
  for (;;) {
    if (i >= source.length) fail(`unterminated string starting at position ${start + 1}`);
    if (source[i] === quote) {
      if (source[i + 1] === quote) {
        text += quote;
        i += 2;
        continue;
      }
      return { text, end: i + 1 };
    }
    text += source[i++];
  }
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '=' || c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: 'symbol', text: c, pos: i + 1 });
      i++;
    } else if (c === "'" || c === '"') {
      const start = i;
      const quoted = readQuoted(source, start, fail);
      i = quoted.end;
      tokens.push({ kind: 'string', text: quoted.text, pos: start + 1 });
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < source.length && /[A-Za-z0-9_]/.test(source[i])) i++;
      tokens.push({ kind: 'word', text: source.slice(start, i), pos: start + 1 });
    } else {
      // Reported by the parser, which knows what it expected there.
      const char = String.fromCodePoint(source.codePointAt(i) ?? 0);
      tokens.push({ kind: 'other', text: char, pos: i + 1 });
      i += char.length;
    }
  }
  tokens.push({ kind: 'end', pos: source.length + 1 });
  return tokens;
}

/** A token as an error message shows it: bounded, with control characters spelled out. */
function describe(t: Token): string {
  if (t.kind === 'end') return 'the end of the expression';
  const shown = (t.text.length > 40 ? t.text.slice(0, 40) + '…' : t.text).replace(
    /[\u0000-\u001f\u007f]/g,
    (c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`,
  );
  if (t.kind === 'string') return `the string '${shown}'`;
  if (t.kind === 'other' && shown !== t.text) return `the character ${shown}`;
  return `"${shown}"`;
}

type Predicate = (o: Filterable) => boolean;

/** Parser state: a token list and a cursor. */
class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  peek(): Token {
    return this.tokens[this.i];
  }

  next(): Token {
    // The last token is 'end'; the cursor never moves past it.
    return this.tokens[Math.min(this.i++, this.tokens.length - 1)];
  }

  unexpected(t: Token, wanted: string): never {
    fail(`expected ${wanted} at position ${t.pos}, found ${describe(t)}`);
  }

  isSymbol(t: Token, text: string): boolean {
    return t.kind === 'symbol' && t.text === text;
  }

  symbol(text: string): void {
    const t = this.next();
    if (!this.isSymbol(t, text)) this.unexpected(t, `"${text}"`);
  }

  string(): string {
    const t = this.next();
    if (t.kind !== 'string') this.unexpected(t, 'a quoted string');
    return t.text;
  }

  keyword(t: Token, word: string): boolean {
    return t.kind === 'word' && t.text.toLowerCase() === word;
  }

  expression(): Predicate {
    const clauses: Predicate[] = [this.clause()];
    while (this.keyword(this.peek(), 'and')) {
      this.next();
      if (clauses.length >= MAX_CLAUSES) fail(`more than ${MAX_CLAUSES} clauses`);
      clauses.push(this.clause());
    }
    const end = this.peek();
    if (end.kind !== 'end') this.unexpected(end, '"and" or the end of the expression');
    return clauses.length === 1 ? clauses[0] : (o) => clauses.every((c) => c(o));
  }

  clause(): Predicate {
    const field = this.next();
    if (field.kind !== 'word') this.unexpected(field, 'a field (name, extension, directory)');
    const name = field.text.toLowerCase();
    if (name === 'directory') return this.directoryClause();
    if (name !== 'name' && name !== 'extension') {
      fail(`unknown field "${field.text}" at position ${field.pos}`);
    }
    const op = this.next();
    const value: (o: Filterable) => string | null =
      name === 'name' ? (o) => o.name : (o) => (o.directory ? null : extensionOf(o.name));
    const fold = name === 'extension' ? (s: string) => s.toLowerCase() : (s: string) => s;
    const given = name === 'extension' ? (s: string) => stripDot(s).toLowerCase() : (s: string) => s;

    if (op.kind === 'symbol' && op.text === '=') {
      const wanted = given(this.string());
      return (o) => {
        const v = value(o);
        return v !== null && fold(v) === wanted;
      };
    }
    if (this.keyword(op, 'like')) {
      const pattern = this.string();
      const lowered = Array.from((name === 'extension' ? stripDot(pattern) : pattern).toLowerCase());
      return (o) => {
        const v = value(o);
        return v !== null && likeMatch(Array.from(v.toLowerCase()), lowered);
      };
    }
    if (this.keyword(op, 'in')) {
      this.symbol('(');
      const values = new Set<string>([given(this.string())]);
      for (let count = 1; this.isSymbol(this.peek(), ','); count++) {
        this.next();
        if (count >= MAX_IN_VALUES) fail(`more than ${MAX_IN_VALUES} values in one "in" list`);
        values.add(given(this.string()));
      }
      this.symbol(')');
      return (o) => {
        const v = value(o);
        return v !== null && values.has(fold(v));
      };
    }
    this.unexpected(op, '"=", "like" or "in"');
  }

  directoryClause(): Predicate {
    this.symbol('=');
    const t = this.next();
    const text = t.kind === 'word' || t.kind === 'string' ? t.text.toLowerCase() : '';
    if (text !== 'true' && text !== 'false') this.unexpected(t, 'true or false');
    const wanted = text === 'true';
    return (o) => o.directory === wanted;
  }
}

function stripDot(extension: string): string {
  return extension.startsWith('.') ? extension.slice(1) : extension;
}

/** The extension of a file name without its dot; '' when there is none (".profile" has none). */
export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1);
}

/**
 * SQL LIKE over code points: `%` any run, `_` one. Backtracks only to the last `%` seen, so it
 * runs in O(text × pattern) at worst.
 */
function likeMatch(text: string[], pattern: string[]): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '_' || (pattern[p] !== '%' && pattern[p] === text[t]))) {
      t++;
      p++;
    } else if (p < pattern.length && pattern[p] === '%') {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '%') p++;
  return p === pattern.length;
}

/**
 * Parses a `where` expression into a predicate, or throws `invalid` naming the position and
 * the token at fault and listing what is supported.
 */
export function parseWhere(raw: string): (o: Filterable) => boolean {
  if (raw.length > MAX_WHERE_LENGTH) fail(`expression is ${raw.length} characters long; the limit is ${MAX_WHERE_LENGTH}`);
  if (raw.trim() === '') fail('expression is empty');
  return new Parser(tokenize(raw)).expression();
}

/** Fields `orderBy` may name. */
export const ORDER_FIELDS = ['name', 'size', 'createdDate', 'modifiedDate', 'directory', 'path'] as const;
export type OrderField = (typeof ORDER_FIELDS)[number];

function compareField(field: OrderField, a: Sortable, b: Sortable): number {
  switch (field) {
    case 'name':
    case 'path':
      return a[field] < b[field] ? -1 : a[field] > b[field] ? 1 : 0;
    case 'size':
      return a.size - b.size;
    case 'directory':
      return Number(a.directory) - Number(b.directory);
    case 'createdDate':
    case 'modifiedDate':
      return (a[field]?.getTime() ?? 0) - (b[field]?.getTime() ?? 0);
  }
}

/**
 * Parses an `orderBy` list ("name", "size desc", "modifiedDate desc, name") into a comparator.
 * Names compare by code point (stable across locales). Ties are finally broken by path, so the
 * order is total and paging over it is deterministic. An empty list orders by path.
 * Throws `invalid` naming the allowed fields.
 */
export function parseOrderBy(raw: string): <T extends Sortable>(a: T, b: T) => number {
  const allowed = `orderBy takes a comma-separated list of ${ORDER_FIELDS.join(', ')}, each optionally followed by asc or desc`;
  if (raw.length > MAX_ORDER_BY_LENGTH) throw invalid(`orderBy is longer than ${MAX_ORDER_BY_LENGTH} characters; ${allowed}`);
  const keys: { field: OrderField; sign: number }[] = [];
  if (raw.trim() !== '') {
    for (const part of raw.split(',')) {
      const words = part.trim().split(/\s+/);
      const field = ORDER_FIELDS.find((f) => f.toLowerCase() === words[0]?.toLowerCase());
      const direction = (words[1] ?? 'asc').toLowerCase();
      if (!field || words.length > 2 || (direction !== 'asc' && direction !== 'desc')) {
        throw invalid(`orderBy: cannot use "${part.trim().slice(0, 60)}"; ${allowed}`);
      }
      if (keys.some((k) => k.field === field)) throw invalid(`orderBy names "${field}" twice; ${allowed}`);
      keys.push({ field, sign: direction === 'desc' ? -1 : 1 });
    }
  }
  if (!keys.some((k) => k.field === 'path')) keys.push({ field: 'path', sign: 1 });
  return (a, b) => {
    for (const { field, sign } of keys) {
      if (field === 'createdDate' || field === 'modifiedDate') {
        // An object without the date sorts after those with one, whichever the direction.
        const missing = Number(a[field] === undefined) - Number(b[field] === undefined);
        if (missing !== 0) return missing;
      }
      const c = compareField(field, a, b);
      if (c !== 0) return c * sign;
    }
    return 0;
  };
}
