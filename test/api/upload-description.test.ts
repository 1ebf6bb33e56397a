/**
 * Issue 21: the upload's `description` parameter was accepted and silently dropped. Ferry keeps
 * no descriptions, so it refuses one with a 400 that says so — as a query parameter or as a
 * multipart field — and stores nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('upload description', () => {
  let srv: TestServer;
  let auth = '';
  before(async () => {
    srv = await startTestServer();
    auth = (await srv.instance('localfs', { root: 'desc' }, 'desc')).auth;
  });
  after(async () => srv.close());

  async function upload(query: string, fields: Record<string, string> = {}) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('file', new Blob(['hello']), 'a.txt');
    const res = await fetch(`${srv.base}/hubs/documents/files?${query}`, { method: 'POST', headers: { authorization: auth }, body: form });
    return { status: res.status, body: (await res.json()) as any };
  }

  it('a description in the query is refused with 400 naming it; nothing is stored', async () => {
    const res = await upload('path=/a.txt&description=quarterly%20report');
    assert.equal(res.status, 400);
    assert.match(res.body.message, /description/);
    assert.match(res.body.message, /tags/);
    const meta = await fetch(`${srv.base}/hubs/documents/files/metadata?path=/a.txt`, { headers: { authorization: auth } });
    assert.equal(meta.status, 404);
    await meta.arrayBuffer();
  });

  it('a description as a multipart field is refused too', async () => {
    const res = await upload('path=/b.txt', { description: 'quarterly report' });
    assert.equal(res.status, 400);
    assert.match(res.body.message, /description/);
    const meta = await fetch(`${srv.base}/hubs/documents/files/metadata?path=/b.txt`, { headers: { authorization: auth } });
    assert.equal(meta.status, 404);
    await meta.arrayBuffer();
  });

  it('without a description the upload works as before', async () => {
    const res = await upload('path=/c.txt', { 'tags[]': 'report' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.tags, ['report']);
  });
});
