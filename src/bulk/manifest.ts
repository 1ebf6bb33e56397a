/**
 * Batch manifests (`POST /bulk/files`, issue 17): a CSV (header row naming the columns) or
 * NDJSON file of rows `{operation, path, to, overwrite, tags}`, parsed as a stream with
 * csv-parse. The whole manifest is read once before the job is accepted: a manifest that is not
 * UTF-8, does not parse, or is over the limits (FERRY_BULK_MAX_ROWS, FERRY_BULK_MAX_BYTES) is a
 * 400 naming the line, and nothing runs. What is wrong with a single row (an unknown operation,
 * no path) is not the manifest's fault: that row becomes an error row when the job runs.
 *
 * CSV cells: `overwrite` is true/false (empty = false); `tags` is a JSON array
 * (`["a","b"]`) or names separated by `;`.
 */
import { Readable, Transform } from 'node:stream';
import { isUtf8 } from 'node:buffer';
import { CsvError, parse } from 'csv-parse';
import { invalid } from '../errors.js';

export const OPERATIONS = ['copy', 'move', 'delete', 'createFolder', 'setTags'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** One manifest row as written (checked only when it runs). */
export interface ManifestRow {
  /** 1-based data row number (the header row of a CSV is not counted). */
  row: number;
  operation: unknown;
  path: unknown;
  to: unknown;
  overwrite: unknown;
  tags: unknown;
}

/** `metaData` part: how the batch runs. */
export interface BatchOptions {
  continueOnError: boolean;
  concurrency: number;
}

export const DEFAULT_OPTIONS: BatchOptions = { continueOnError: true, concurrency: 4 };
export const MAX_CONCURRENCY = 32;

export type ManifestFormat = 'csv' | 'ndjson';

/** The format of a manifest part: by its content type or name, else by its first character. */
export function manifestFormat(mimeType: string | undefined, filename: string | undefined, first: number | undefined): ManifestFormat {
  if (/csv/i.test(mimeType ?? '') || /\.csv$/i.test(filename ?? '')) return 'csv';
  if (/json/i.test(mimeType ?? '') || /\.(nd)?jsonl?$/i.test(filename ?? '')) return 'ndjson';
  return first === 0x7b ? 'ndjson' : 'csv';
}

/** Parses the `metaData` part, or throws a 400 naming what is wrong. */
export function parseOptions(text: string | undefined): BatchOptions {
  if (text === undefined || text.trim() === '') return { ...DEFAULT_OPTIONS };
  let raw: any;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid('The metaData part is not JSON; send e.g. {"continueOnError": true, "concurrency": 4}');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('The metaData part must be a JSON object, e.g. {"continueOnError": true}');
  const options = { ...DEFAULT_OPTIONS };
  if (raw.continueOnError !== undefined) {
    if (typeof raw.continueOnError !== 'boolean') throw invalid('metaData.continueOnError must be true or false');
    options.continueOnError = raw.continueOnError;
  }
  if (raw.concurrency !== undefined) {
    if (!Number.isInteger(raw.concurrency) || raw.concurrency < 1 || raw.concurrency > MAX_CONCURRENCY) {
      throw invalid(`metaData.concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
    }
    options.concurrency = raw.concurrency;
  }
  return options;
}

/** Limits of one manifest. */
export interface ManifestLimits {
  maxRows: number;
  maxBytes: number;
}

/**
 * Checks the bytes: UTF-8 and the byte limit, counting lines so an error can name one. Passes
 * the text on (decoded), one chunk at a time.
 */
function checkedText(limits: ManifestLimits): Transform {
  let bytes = 0;
  let line = 1;
  let carry = Buffer.alloc(0);
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _e, done) {
      bytes += chunk.length;
      if (bytes > limits.maxBytes) return done(invalid(`The manifest is larger than ${limits.maxBytes} bytes (FERRY_BULK_MAX_BYTES), at line ${line}; split it into several batches`));
      const all = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      // Decode up to the last newline; the rest waits for the next chunk (a character may be split).
      const cut = all.lastIndexOf(0x0a) + 1;
      const whole = all.subarray(0, cut);
      carry = Buffer.from(all.subarray(cut));
      const bad = firstBadLine(whole);
      if (bad >= 0) return done(notUtf8(line + bad));
      for (const b of whole) if (b === 0x0a) line++;
      done(null, whole.length ? whole.toString('utf8') : undefined);
    },
    flush(done) {
      if (carry.length && !isUtf8(carry)) return done(notUtf8(line));
      done(null, carry.length ? carry.toString('utf8') : undefined);
    },
  });
}

function notUtf8(line: number) {
  return invalid(`The manifest is not UTF-8 text: line ${line} holds bytes that are not UTF-8; save it as UTF-8`);
}

/** Index (0-based) of the first line of `text` that is not UTF-8, or -1. */
function firstBadLine(text: Buffer): number {
  if (isUtf8(text)) return -1;
  let start = 0;
  for (let n = 0; ; n++) {
    const end = text.indexOf(0x0a, start);
    const slice = text.subarray(start, end < 0 ? text.length : end);
    if (!isUtf8(slice)) return n;
    if (end < 0) return n;
    start = end + 1;
  }
}

/**
 * The rows of a manifest, streamed; throws a 400 naming the line when the manifest cannot be
 * read (see the header). `skip`: rows before this one are not parsed into objects (resume).
 */
export async function* manifestRows(
  bytes: Readable,
  given: ManifestFormat | { mimeType?: string; filename?: string; found(format: ManifestFormat): void },
  limits: ManifestLimits,
): AsyncGenerator<ManifestRow> {
  const checked = bytes.pipe(checkedText(limits));
  bytes.on('error', (e) => checked.destroy(e));
  const chunks = checked[Symbol.asyncIterator]() as AsyncIterator<string>;
  const first = await chunks.next();
  let format: ManifestFormat;
  if (typeof given === 'string') format = given;
  else {
    const start = first.done ? '' : first.value.replace(/^\uFEFF/, '').trimStart();
    format = manifestFormat(given.mimeType, given.filename, start.charCodeAt(0));
    given.found(format);
  }
  async function* rest() {
    if (first.done) return;
    yield first.value;
    for (;;) {
      const n = await chunks.next();
      if (n.done) return;
      yield n.value;
    }
  }
  const text = Readable.from(rest());
  let row = 0;
  const tooMany = (line: number) => invalid(`The manifest has more than ${limits.maxRows} rows (FERRY_BULK_MAX_ROWS), at line ${line}; split it into several batches`);
  if (format === 'ndjson') {
    let line = 0;
    let rest = '';
    const one = (t: string): ManifestRow | null => {
      line++;
      if (t.trim() === '') return null;
      let o: any;
      try {
        o = JSON.parse(t);
      } catch {
        throw invalid(`The manifest's line ${line} is not JSON; each line of an NDJSON manifest is one object like {"operation":"copy","path":"/a","to":"/b"}`);
      }
      if (!o || typeof o !== 'object' || Array.isArray(o)) throw invalid(`The manifest's line ${line} is not a JSON object`);
      if (++row > limits.maxRows) throw tooMany(line);
      return { row, operation: o.operation, path: o.path, to: o.to, overwrite: o.overwrite, tags: o.tags };
    };
    for await (const chunk of text) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) {
        const r = one(l.replace(/\r$/, ''));
        if (r) yield r;
      }
    }
    const r = one(rest);
    if (r) yield r;
    return;
  }
  const parser = parse({ columns: (header: string[]) => header.map((h) => h.trim()), bom: true, skip_empty_lines: true, info: true, relax_column_count: false });
  const records = text.pipe(parser);
  text.on('error', (e) => parser.destroy(e));
  let checkedHeader = false;
  try {
    for await (const { record, info } of records as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      if (!checkedHeader) {
        checkedHeader = true;
        if (!('operation' in record)) throw invalid('The manifest\'s line 1 (the CSV header) has no "operation" column; name the columns: operation,path,to,overwrite,tags');
      }
      if (++row > limits.maxRows) throw tooMany(info.lines);
      yield { row, operation: record.operation, path: record.path, to: record.to, overwrite: record.overwrite, tags: record.tags };
    }
  } catch (e: any) {
    if (e instanceof CsvError) {
      const line = (e as unknown as { lines?: number }).lines ?? '?';
      throw invalid(`The manifest does not parse as CSV at line ${line}: ${String(e.message).slice(0, 200)}`);
    }
    throw e;
  }
}
