/**
 * Pure pieces of Open Connectors compatibility (issue 23): elements by key or id, the documented
 * configuration keys filled in on read and dropped again when sent back unset.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findElementByKeyOrId } from '../../src/elements/catalog.js';
import { DOCUMENTED_EVENT_KEYS, withDocumentedKeys, withoutUnsetDocumentedKeys } from '../../src/instances/documented.js';

test('an element is found by key or by numeric id, and by nothing else', () => {
  const sftp = findElementByKeyOrId('sftp');
  assert.ok(sftp);
  assert.equal(findElementByKeyOrId(String(sftp.id))?.key, 'sftp');
  for (const other of ['SFTP', '0', '-1', '1e0', ' 1', '99999', '', '1.0']) assert.equal(findElementByKeyOrId(other), undefined, other);
});

test('a read configuration has every element key and documented event key, null when unset', () => {
  const read = withDocumentedKeys({ root: 'a', 'event.notification.enabled': 'false' }, ['root', 'event.notification.enabled']);
  assert.equal(read.root, 'a');
  assert.equal(read['event.notification.enabled'], 'false');
  for (const k of DOCUMENTED_EVENT_KEYS) assert.ok(k in read, k);
  assert.equal(read['event.vendor.type'], null);
});

test('sent back, unset documented keys the element lacks are dropped; values and own keys stay', () => {
  const own = ['root', 'event.notification.enabled'];
  const back = withoutUnsetDocumentedKeys(
    { root: 'a', 'event.vendor.type': null, 'event.poller.configuration': '', 'event.notification.enabled': null, other: null },
    own,
  );
  assert.deepEqual(back, { root: 'a', 'event.notification.enabled': null, other: null });
  assert.deepEqual(withoutUnsetDocumentedKeys({ 'event.vendor.type': 'polling' }, own), { 'event.vendor.type': 'polling' });
  assert.equal(withoutUnsetDocumentedKeys(undefined, own), undefined);
});
