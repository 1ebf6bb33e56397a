/**
 * Which multipart uploads a re-run takes for its crashed run's (issue 25,
 * src/elements/amazons3/stale-uploads.ts): the journal's two forms, and the window test that
 * decides which listed uploads to abort. The listing itself needs a server with
 * ListMultipartUploads, which s3rver lacks (see test/async/resume.test.ts for what it shows).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOCK_SLACK_MS, parseIntent, startedByIntent } from '../../src/elements/amazons3/stale-uploads.js';

test('journal values: the intent, the intent with its id, and a bare id journaled by an older version', () => {
  assert.deepEqual(parseIntent('{"at":1700000000000}'), { at: 1700000000000 });
  assert.deepEqual(parseIntent('{"at":1700000000000,"uploadId":"abc"}'), { at: 1700000000000, uploadId: 'abc' });
  assert.deepEqual(parseIntent('2~Zx-older-upload-id'), { at: 0, uploadId: '2~Zx-older-upload-id' });
});

test('only uploads of exactly the key, started in the window after the intent, are the crashed run\'s', () => {
  const at = Date.parse('2026-01-01T12:00:00Z');
  const intent = { at };
  const timeout = 30_000;
  const upload = (Key: string, offsetMs: number) => ({ Key, UploadId: `u${offsetMs}`, Initiated: new Date(at + offsetMs) });
  assert.equal(startedByIntent(upload('a/big.bin', 150), 'a/big.bin', intent, timeout), true, 'right after the intent');
  assert.equal(startedByIntent(upload('a/big.bin', -CLOCK_SLACK_MS + 1), 'a/big.bin', intent, timeout), true, 'a server clock behind ours');
  assert.equal(startedByIntent(upload('a/big.bin', timeout + CLOCK_SLACK_MS - 1), 'a/big.bin', intent, timeout), true, 'a slow create, a clock ahead');
  assert.equal(startedByIntent(upload('a/big.bin', -CLOCK_SLACK_MS - 1000), 'a/big.bin', intent, timeout), false, 'an older upload of the key');
  assert.equal(startedByIntent(upload('a/big.bin', timeout + CLOCK_SLACK_MS + 1000), 'a/big.bin', intent, timeout), false, 'a later upload of the key');
  assert.equal(startedByIntent(upload('a/big.bin.bak', 150), 'a/big.bin', intent, timeout), false, 'a longer key the prefix listing returns');
  assert.equal(startedByIntent({ Key: 'a/big.bin', Initiated: new Date(at) }, 'a/big.bin', intent, timeout), false, 'no upload id');
});
