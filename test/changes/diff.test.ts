/** Unit tests of the pure parts of change polling: the diff and the notification bodies. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diff, snapshotOf, snapshotWrites } from '../../src/changes/diff.js';
import { notificationsFor } from '../../src/changes/message.js';
import type { Entry } from '../../src/elements/element.js';
import type { SnapshotEntry } from '../../src/store/changes.js';

const file = (path: string, size: number, mtime: number, version?: string): Entry => ({ path, directory: false, size, modifiedDate: new Date(mtime), version });
const folder = (path: string, mtime = 1): Entry => ({ path, directory: true, size: 0, modifiedDate: new Date(mtime) });
const snap = (...entries: Entry[]) => new Map<string, SnapshotEntry>(entries.map((e) => [e.path, snapshotOf(e)]));

test('no change → nothing; a folder whose mtime moved is not UPDATED', () => {
  const before = snap(file('/a', 1, 10, '7'), folder('/d', 5));
  assert.deepEqual(diff(before, [file('/a', 1, 10, '7'), folder('/d', 99)]), []);
});

test('size, mtime or version (inode, ETag) differing → UPDATED', () => {
  const before = snap(file('/a', 1, 10, '7'), file('/b', 1, 10, '7'), file('/c', 1, 10, '7'));
  const changes = diff(before, [file('/a', 2, 10, '7'), file('/b', 1, 11, '7'), file('/c', 1, 10, '8')]);
  assert.deepEqual(changes.map((c) => [c.eventType, c.path]), [['UPDATED', '/a'], ['UPDATED', '/b'], ['UPDATED', '/c']]);
});

test('a rename is DELETED then CREATED; a kind change too; writes delete before they upsert', () => {
  const before = snap(file('/old', 1, 10), file('/x', 1, 10));
  const changes = diff(before, [file('/new', 1, 10), folder('/x')]);
  assert.deepEqual(changes.map((c) => [c.eventType, c.path, c.directory]), [
    ['DELETED', '/old', false],
    ['DELETED', '/x', false],
    ['CREATED', '/new', false],
    ['CREATED', '/x', true],
  ]);
  const writes = snapshotWrites(changes);
  assert.deepEqual(writes.deletes, ['/old', '/x']);
  assert.deepEqual(writes.upserts.map((u) => [u.path, u.directory]), [['/new', false], ['/x', true]]);
});

test('25 changes → notifications of 10, 10 and 5 with the Open Connectors event shape', () => {
  const changes = diff(new Map(), Array.from({ length: 25 }, (_, i) => file(`/in/f${String(i).padStart(2, '0')}.txt`, 1, 1000)));
  const out = notificationsFor(changes, { instanceId: 7, elementKey: 'localfs', watch: { path: '/in', recursive: true }, polledAt: new Date(5000) });
  assert.deepEqual(out.map((n) => JSON.parse(n.body(1)).message.events.length), [10, 10, 5]);
  const body = JSON.parse(out[0].body(42));
  assert.equal(body.message.eventId, 42);
  assert.equal(body.message.instanceId, 7);
  assert.equal(body.message.elementKey, 'localfs');
  assert.deepEqual(body.message.events[0], {
    objectType: 'file',
    objectId: encodeURIComponent(encodeURIComponent('/in/f00.txt')),
    eventType: 'CREATED',
    elementKey: 'localfs',
    path: '/in/f00.txt',
    date: new Date(1000).toISOString(),
  });
  assert.equal(body.message.raw.objects.length, 10);
});
