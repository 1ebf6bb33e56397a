/**
 * The export's hand-written encoders (issue 17's speed) against the builtins they replace:
 * `isoDate` writes what `Date.prototype.toISOString` writes, and `recordLine` writes what
 * `JSON.stringify(toRecord(o))` writes, for any strings — quotes, backslashes, control
 * characters, non-ASCII and lone surrogates included. Properties checked with fast-check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isoDate } from '../../src/documents/iso-date.js';
import type { DocumentObject } from '../../src/documents/service.js';
import { recordLine, type ExportRecord } from '../../src/bulk/records.js';

/** The record an export writes of an object, field by field, as JSON.stringify would take it. */
function toRecord(o: DocumentObject): ExportRecord {
  return {
    id: o.id,
    path: o.path,
    name: o.name,
    directory: o.directory,
    size: o.size,
    createdDate: o.createdDate,
    modifiedDate: o.modifiedDate,
    tags: o.tags,
    mimeType: o.properties.mimeType,
    parentFolderId: o.parentFolderId,
  };
}

describe('isoDate', () => {
  it('matches toISOString on every date with a four-digit year, leap days and edges included', () => {
    const edges = [0, -1, 1, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, -62_167_219_200_000, 253_402_300_799_999, 1_780_000_000_123];
    for (const ms of edges) assert.equal(isoDate(new Date(ms)), new Date(ms).toISOString(), `at ${ms}`);
    fc.assert(
      fc.property(fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), (ms) => {
        assert.equal(isoDate(new Date(ms)), new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
  });

  it('leaves other years to the builtin, and an invalid date still throws as toISOString does', () => {
    for (const ms of [-62_167_219_200_001, 253_402_300_800_000, 8.64e15, -8.64e15]) assert.equal(isoDate(new Date(ms)), new Date(ms).toISOString());
    assert.throws(() => isoDate(new Date(NaN)), RangeError);
  });
});

describe('recordLine', () => {
  const anyString = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20, unit: 'binary' }), fc.constantFrom('"', '\\', '\u2028', '\ud800', 'a\u0000b', '\u007f'));
  const object = fc.record({
    id: anyString,
    path: anyString,
    name: anyString,
    directory: fc.boolean(),
    size: fc.nat(),
    createdDate: fc.option(anyString),
    modifiedDate: fc.option(anyString),
    tags: fc.array(anyString, { maxLength: 3 }),
    mimeType: fc.option(anyString),
    parentFolderId: fc.option(anyString),
  });

  it('writes exactly the JSON.stringify of the record, and one line', () => {
    fc.assert(
      fc.property(object, (r) => {
        const o: DocumentObject = {
          id: r.id,
          name: r.name,
          path: r.path,
          directory: r.directory,
          size: r.size,
          createdDate: r.createdDate,
          modifiedDate: r.modifiedDate,
          tags: r.tags,
          parentFolderId: r.parentFolderId,
          properties: { mimeType: r.mimeType },
        };
        const line = recordLine(o);
        assert.equal(line, JSON.stringify(toRecord(o)) + '\n');
        assert.equal(line.indexOf('\n'), line.length - 1);
      }),
      { numRuns: 5000 },
    );
  });
});
