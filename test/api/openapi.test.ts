/**
 * The OpenAPI document (issue 20): the one a running Ferry serves passes a maintained validator
 * (@apidevtools/swagger-parser) with no errors, and every operation in it documents a success
 * answer and the error body. The check walks whatever routes are registered, so a route added
 * later without documentation (src/http/openapi/routes.ts or its own schema.response) fails here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { openApiDocument } from '../../src/http/openapi/document.js';

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];
const ERROR_REF = '#/components/schemas/ErrorBody';

/** Every operation lacking a documented success answer or the error body, as "METHOD path: why". */
function undocumented(doc: Record<string, any>): string[] {
  const problems: string[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const name = `${method.toUpperCase()} ${path}`;
      const responses = op.responses ?? {};
      const success = Object.entries<any>(responses).filter(([code]) => /^2/.test(code));
      // @fastify/swagger writes "Default Response" without content when a route documents nothing.
      if (success.length === 0 || success.every(([, r]) => r.description === 'Default Response' && !r.content)) {
        problems.push(`${name}: no documented success response`);
      }
      for (const code of ['4XX', '5XX']) {
        if (responses[code]?.content?.['application/json']?.schema?.$ref !== ERROR_REF) problems.push(`${name}: no ${code} error body`);
      }
      for (const param of (path.match(/\{[^}]+\}/g) ?? []).map((p) => p.slice(1, -1))) {
        if (!(op.parameters ?? []).some((p: any) => p.in === 'path' && p.name === param)) problems.push(`${name}: path parameter ${param} undocumented`);
      }
    }
  }
  return problems;
}

describe('OpenAPI document', () => {
  let srv: TestServer;
  let served: Record<string, any>;
  before(async () => {
    srv = await startTestServer();
    const res = await fetch(`${srv.base}/docs/json`);
    assert.equal(res.status, 200);
    served = (await res.json()) as Record<string, any>;
  });
  after(async () => {
    await srv.close();
  });

  it('passes swagger-parser validation with no errors', async () => {
    // validate() dereferences in place: give it a copy.
    await SwaggerParser.validate(structuredClone(served) as any);
    assert.match(served.openapi, /^3\./);
  });

  it('documents a success answer, the error body and the path parameters of every route', () => {
    assert.ok(Object.keys(served.paths).length >= 50, 'the platform, hub, event and settings routes are all there');
    assert.deepEqual(undocumented(served), []);
  });

  it('describes the error body as {requestId, message, providerMessage}', () => {
    const error = served.components.schemas.ErrorBody;
    assert.deepEqual(Object.keys(error.properties).sort(), ['message', 'providerMessage', 'requestId']);
    assert.deepEqual(error.required.sort(), ['message', 'requestId']);
  });

  it('documents the upload body, download bytes and async headers of the hub', () => {
    const files = served.paths['/elements/api-v2/hubs/documents/files'];
    assert.ok(files.post.requestBody.content['multipart/form-data'].schema.properties.file);
    assert.ok(files.get.responses['200'].content['application/octet-stream']);
    const copy = served.paths['/elements/api-v2/hubs/documents/folders/copy'].post;
    const headers = copy.parameters.filter((p: any) => p.in === 'header').map((p: any) => p.name);
    assert.deepEqual(headers.sort(), ['Elements-Async-Callback-Url', 'Elements-Async-Request', 'Idempotency-Key']);
    assert.equal(copy.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/DocumentObject');
  });

  it('keeps internal routes (docs UI, CORS preflight) out of the document', () => {
    assert.ok(!Object.keys(served.paths).some((p) => p.includes('/docs') || p === '*' || p === '/*'));
  });

  it('the check catches a route registered without a documented response', async () => {
    const doc = await openApiDocument((app) => {
      app.get('/elements/api-v2/undocumented-example', async () => ({ ok: true }));
    });
    assert.deepEqual(undocumented(doc), ['GET /elements/api-v2/undocumented-example: no documented success response']);
  });
});
