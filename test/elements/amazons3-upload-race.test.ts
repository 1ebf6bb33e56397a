/**
 * Issue 21 on S3 (s3rver): S3 has no folders, but a folder can exist as a marker object ("a/")
 * and a key implies its parents. Concurrent uploads into one new nested folder that break off
 * mid-file must leave neither an object nor a marker under it (nor a multipart upload: each
 * one started is aborted), and one that completes among them leaves exactly its object.
 *
 * Each body is larger than a multipart part (8 MiB), so every upload has started its multipart
 * upload on the server — observable in the request log — before any of them ends.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { UPLOAD_PART_BYTES } from '../../src/elements/amazons3/s3-element.js';
import { FAST_ASYNC, startTestServer, type TestServer } from '../helpers/server.js';
import { startS3, type S3TestServer } from '../helpers/s3.js';
import { holdUpload } from '../helpers/uploads.js';

const s3 = await startS3();
const skip = s3 === null ? 's3rver could not start' : false;

describe('amazons3: concurrent uploads into one new nested folder (HTTP)', { skip }, () => {
  const server = s3 as S3TestServer;
  let srv: TestServer;
  let auth = '';
  let client: S3Client;
  before(async () => {
    srv = await startTestServer(FAST_ASYNC);
    auth = (await srv.instance('amazons3', server.config)).auth;
    client = new S3Client({
      endpoint: server.directEndpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
    });
  });
  after(async () => {
    client?.destroy();
    await srv?.close();
    await server?.stop();
  });

  /** Every key in the bucket under `prefix`, markers included. */
  async function keysUnder(prefix: string): Promise<string[]> {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: prefix }));
    return (listed.Contents ?? []).map((o) => o.Key as string).sort();
  }

  const multipartStarts = () => server.traffic().requests.filter((r) => r.method === 'POST' && /(^|&)uploads(=|&|$)/.test(r.query));

  async function startAll(folder: string, count: number) {
    server.resetTraffic();
    const uploads = Array.from({ length: count }, (_, i) => {
      const data = randomBytes(UPLOAD_PART_BYTES + 64 * 1024);
      const first = data.subarray(0, UPLOAD_PART_BYTES + 1024);
      return { name: `f${i}.bin`, data, ...holdUpload(srv.base, auth, `/${folder}/f${i}.bin`, first, data.subarray(first.length)) };
    });
    for (let i = 0; i < 1500 && multipartStarts().length < count; i++) await sleep(20);
    assert.equal(multipartStarts().length, count, 'every upload has started its multipart upload');
    return uploads;
  }

  /** Keys whose multipart upload (one per key here) was started but neither aborted nor completed. */
  function leftOpen(): string[] {
    const requests = server.traffic().requests;
    const ended = new Set(requests.filter((r) => (r.method === 'DELETE' || r.method === 'POST') && /(^|&)uploadId=/.test(r.query)).map((r) => r.path));
    return multipartStarts()
      .map((r) => r.path)
      .filter((p) => !ended.has(p));
  }

  it('several uploads that all break off mid-file: each is answered 400, no object, marker or multipart upload is left', async () => {
    const uploads = await startAll('web/a/b', 4);
    for (const u of uploads) u.finish(false);
    for (const u of uploads) assert.equal((await u.answer).status, 400, `${u.name}: ${(await u.answer).body}`);
    assert.deepEqual(await keysUnder('web'), [], 'nothing under the folder, not even a marker');
    assert.deepEqual(leftOpen(), [], 'every multipart upload was aborted');
    const hub = await fetch(`${srv.base}/hubs/documents/folders/metadata?path=/web`, { headers: { authorization: auth } });
    assert.equal(hub.status, 404, 'the folder does not exist for Ferry either');
  });

  it('one completes while the others break off: 200 for it, 400 for them, exactly its object is left', async () => {
    const uploads = await startAll('mixed/a/b', 4);
    uploads.forEach((u, i) => u.finish(i === 1));
    for (const [i, u] of uploads.entries()) assert.equal((await u.answer).status, i === 1 ? 200 : 400, `${u.name}: ${(await u.answer).body}`);
    assert.deepEqual(await keysUnder('mixed'), ['mixed/a/b/f1.bin']);
    assert.deepEqual(leftOpen(), []);
    const hub = await fetch(`${srv.base}/hubs/documents/files?path=/mixed/a/b/f1.bin`, { headers: { authorization: auth } });
    assert.equal(hub.status, 200);
    assert.ok(Buffer.from(await hub.arrayBuffer()).equals(uploads[1].data), 'the object is whole');
  });
});
