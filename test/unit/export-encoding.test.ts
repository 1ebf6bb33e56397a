/**
 * The export's hand-written encoders (issue 17's speed) against the builtins they replace:
 * `isoDate` writes what `Date.prototype.toISOString` writes, and `recordLine` writes what
 * `JSON.stringify(toRecord(o))` writes, for any strings — quotes, backslashes, control
 * characters, non-ASCII and lone surrogates included — and `encodeRecord` either writes the
 * UTF-8 bytes of that line or declines. Properties checked with fast-check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { isoDate } from '../../src/documents/iso-date.js';
import { objectId } from '../../src/documents/paths.js';
import { mimeType } from '../../src/documents/mime.js';
import type { DocumentObject } from '../../src/documents/service.js';
import { encodeRecord, recordLine, recordRoom, type ExportRecord } from '../../src/bulk/records.js';
import { SealedWriter, sealedLines } from '../../src/bulk/sealed-file.js';

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
  /** Any object, strings of every kind in every field. */
  const object = fc
    .record({
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
    })
    .map(
      (r): DocumentObject => ({
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
      }),
    );

  it('writes exactly the JSON.stringify of the record, and one line', () => {
    fc.assert(
      fc.property(object, (o) => {
        const line = recordLine(o);
        assert.equal(line, JSON.stringify(toRecord(o)) + '\n');
        assert.equal(line.indexOf('\n'), line.length - 1);
      }),
      { numRuns: 5000 },
    );
  });

  /** An object as the documents service presents a file or folder with plain names. */
  const plainName = fc.stringMatching(/^[A-Za-z0-9._ -]{1,20}$/);
  const presented = fc.record({
    folders: fc.array(plainName, { maxLength: 4 }),
    name: plainName,
    directory: fc.boolean(),
    size: fc.oneof(fc.nat(), fc.constant(0), fc.constant(Number.MAX_SAFE_INTEGER)),
    created: fc.option(fc.integer({ min: 0, max: 253_402_300_799_999 })),
    modified: fc.option(fc.integer({ min: 0, max: 253_402_300_799_999 })),
  });

  it('encodeRecord writes the UTF-8 bytes of recordLine, within recordRoom, or declines', () => {
    fc.assert(
      fc.property(fc.oneof(object, presented.map(presentedObject)), (o) => {
        const room = recordRoom(o);
        const out = Buffer.alloc(room + 8, 0xee);
        const end = encodeRecord(o, out, 3);
        if (end === -1) return;
        assert.ok(end - 3 <= room, `wrote ${end - 3} bytes, room ${room}`);
        assert.equal(out.toString('utf8', 3, end), recordLine(o));
        assert.ok(out.subarray(end).every((b) => b === 0xee), 'nothing written past the record');
      }),
      { numRuns: 5000 },
    );
  });

  it('encodeRecord takes every record with plain names, no tags and a whole size', () => {
    fc.assert(
      fc.property(presented, (p) => {
        const o = presentedObject(p);
        assert.notEqual(encodeRecord(o, Buffer.alloc(recordRoom(o)), 0), -1, JSON.stringify(o));
      }),
      { numRuns: 2000 },
    );
  });

  it('a sealed file of records appended, with declined ones written as lines, reads back as the lines', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-records-'));
    try {
      const file = path.join(dir, 'records');
      const key = Buffer.alloc(32, 7);
      const objects = fc.sample(fc.oneof(object, presented.map(presentedObject)), 3000);
      const writer = SealedWriter.open(file, key);
      let declined = 0;
      for (const o of objects) {
        if (writer.append(recordRoom(o), encodeRecord, o)) continue;
        declined++;
        writer.write(recordLine(o));
      }
      writer.checkpoint();
      writer.close();
      const lines: string[] = [];
      for await (const line of sealedLines(file, key)) lines.push(line);
      assert.deepEqual(lines, objects.map((o) => recordLine(o).slice(0, -1)));
      assert.ok(declined > 0 && declined < objects.length, `declined ${declined} of ${objects.length}: both ways were taken`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

function presentedObject(p: { folders: string[]; name: string; directory: boolean; size: number; created: number | null; modified: number | null }): DocumentObject {
  const parent = p.folders.length ? `/${p.folders.join('/')}` : null;
  const objectPath = `${parent ?? ''}/${p.name}`;
  return {
    id: objectId(objectPath),
    name: p.name,
    path: objectPath,
    directory: p.directory,
    size: p.directory ? 0 : p.size,
    createdDate: p.created === null ? null : isoDate(new Date(p.created)),
    modifiedDate: p.modified === null ? null : isoDate(new Date(p.modified)),
    tags: [],
    parentFolderId: parent === null ? objectId('/') : objectId(parent),
    properties: { mimeType: p.directory ? null : mimeType(p.name) },
  };
}
