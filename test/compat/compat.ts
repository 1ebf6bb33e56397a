/**
 * The Open Connectors compatibility suite (issue 23): the calls the platform's public
 * documentation (the cloud-elements/devportal repository) makes against the documents hub and
 * the catalog, replayed against a real Ferry on one element. Every test is one documented
 * call; its title names the page it comes from. Success is exactly 200, as platform clients
 * assert, and the documented fields must be there.
 *
 * Each element's test file starts Ferry and its backend, then calls
 *
 *   runCompat('sftp', () => srv, () => documentedConfig, { skip });
 *
 * where `documentedConfig` is the configuration the element's "Create Instance" page shows,
 * pointed at the test backend.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { multipartFile, USER_SECRET, type TestServer } from '../helpers/server.js';
import { allPages, download, expectStatus, hubClient, idOf, q, upload, type Hub } from '../hub/conformance.js';

/** Documentation pages of cloud-elements/devportal the calls come from. */
export const PAGES = {
  hub: 'docs/hubs/cloud-storage/api-documentation.md (Documents hub API)',
  elements: 'docs/platform-api/elements/index.md',
  hubs: 'docs/platform-api/hubs/index.md',
  instances: 'docs/platform-api/instances/index.md',
  commonConfig: '_includes/common-instance-config.md',
  sftpCreate: 'docs/elements/sftp/sftp-create-instance.md',
  sftpTips: 'docs/elements/sftp/tips.md',
  s3Create: 'docs/elements/amazons3/amazons3-create-instance.md',
  revisions: '_posts/2018-04-03-ReleaseNotes-2.160.md (Amazon S3 revisions)',
  nextPage: '_posts/2018-04-23-ReleaseNotes-2.163.md (documents hub nextPage)',
} as const;

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** A 200 with a JSON body, or a failure showing what came back. */
async function ok(res: Response): Promise<any> {
  return expectStatus(res, 200);
}

/** Asserts that `object` has every key of `keys` (values may be null). */
function hasFields(object: any, keys: string[], what: string): void {
  assert.ok(object && typeof object === 'object', `${what} is an object: ${JSON.stringify(object)}`);
  const missing = keys.filter((k) => !(k in object));
  assert.deepEqual(missing, [], `${what} lacks ${missing.join(', ')}: ${JSON.stringify(object).slice(0, 400)}`);
}

/** The documents hub object model (DESIGN §1.4), checked on one object. */
function isDocumentObject(o: any, path: string, directory: boolean): void {
  hasFields(o, ['id', 'name', 'path', 'directory', 'size', 'createdDate', 'modifiedDate', 'tags', 'parentFolderId', 'properties'], path);
  assert.equal(o.path, path);
  assert.equal(o.id, idOf(path));
  assert.equal(o.directory, directory);
  for (const d of ['createdDate', 'modifiedDate']) if (o[d] !== null) assert.match(o[d], ISO, d);
}

/** The element object fields the catalog pages show. */
const ELEMENT_FIELDS = ['id', 'name', 'key', 'description', 'image', 'active', 'deleted', 'typeOauth', 'trialAccount', 'configDescription'];
/** More fields the element guides' instance responses show inside `element`. */
const INSTANCE_ELEMENT_FIELDS = [...ELEMENT_FIELDS, 'transformationsEnabled', 'bulkDownloadEnabled', 'bulkUploadEnabled', 'cloneable', 'authentication', 'hub', 'protocolType', 'parameters', 'private'];
/** Instance fields of the instances page and the element guides. */
const INSTANCE_FIELDS = ['id', 'name', 'element', 'configuration', 'tags', 'provisionInteractions', 'valid', 'disabled', 'maxCacheSize', 'cacheTimeToLive', 'eventsEnabled', 'traceLoggingEnabled', 'cachingEnabled', 'externalAuthentication'];
/** The `event.*` configuration keys of the sftp guide's response and the common configuration page. */
const EVENT_KEYS = ['event.notification.enabled', 'event.notification.callback.url', 'event.notification.signature.key', 'event.notification.subscription.id', 'event.vendor.type', 'event.poller.refresh_interval', 'event.poller.configuration'];

export interface CompatOptions {
  skip?: string | false;
  /** The "Create Instance" page whose body `documentedConfig` follows. */
  createPage?: string;
}

export function runCompat(
  element: string,
  server: () => TestServer,
  documentedConfig: () => Promise<Record<string, unknown>>,
  options: CompatOptions = {},
): void {
  describe(`compat: ${element}`, { skip: options.skip || false }, () => {
    let srv: TestServer;
    let hub: Hub;
    let created: any;
    const createPage = options.createPage ?? PAGES.instances;

    before(async () => {
      srv = server();
      const res = await srv.api('/instances', {
        method: 'POST',
        json: { element: { key: element }, configuration: await documentedConfig(), tags: ['compat'], name: `compat-${element}` },
      });
      created = await ok(res);
      hub = hubClient(srv, { id: created.id, auth: `User ${USER_SECRET}, Element ${created.token}` });
    });

    // ---- instances --------------------------------------------------------------------

    test(`POST /instances with the documented body → the documented instance object — ${createPage}`, () => {
      hasFields(created, [...INSTANCE_FIELDS, 'token'], 'instance');
      assert.equal(typeof created.id, 'number');
      assert.equal(typeof created.token, 'string');
      hasFields(created.element, INSTANCE_ELEMENT_FIELDS, 'instance.element');
      assert.equal(created.element.key, element);
      assert.equal(created.element.hub, 'documents');
      assert.equal(typeof created.element.authentication.type, 'string');
      assert.deepEqual(created.provisionInteractions, []);
      assert.equal(created.valid, true);
      assert.equal(created.disabled, false);
      assert.equal(created.maxCacheSize, 0);
      assert.equal(created.cacheTimeToLive, 0);
      assert.equal(created.cachingEnabled, false);
      assert.equal(created.traceLoggingEnabled, false);
      assert.equal(created.externalAuthentication, 'none');
      assert.equal(created.eventsEnabled, false);
    });

    test(`instance configuration carries every documented event.* key (null when unset) — ${PAGES.commonConfig}, ${PAGES.sftpCreate}`, () => {
      hasFields(created.configuration, EVENT_KEYS, 'instance.configuration');
      assert.equal(created.configuration['event.notification.callback.url'], null);
      assert.equal(created.configuration['event.notification.subscription.id'], null);
      assert.equal(created.configuration['event.notification.enabled'], 'false');
    });

    test(`GET /instances → each with valid, maxCacheSize, cacheTimeToLive, cachingEnabled, tags — ${PAGES.instances}`, async () => {
      const list = await ok(await srv.api('/instances'));
      const mine = list.find((i: any) => i.id === created.id);
      hasFields(mine, INSTANCE_FIELDS, 'listed instance');
      assert.deepEqual(mine.tags, ['compat']);
      assert.equal(mine.token, undefined, 'the token is shown only on creation');
    });

    test(`GET /instances/{id} — ${PAGES.instances}`, async () => {
      const one = await ok(await srv.api(`/instances/${created.id}`));
      hasFields(one, INSTANCE_FIELDS, 'instance');
      hasFields(one.element, INSTANCE_ELEMENT_FIELDS, 'instance.element');
    });

    test(`PUT /instances/{id} with {name, tags} only — ${PAGES.instances}`, async () => {
      const body = { name: `compat-${element}-renamed`, tags: ['sandbox', '08/21/2014', 'new-tag'] };
      const updated = await ok(await srv.api(`/instances/${created.id}`, { method: 'PUT', json: body }));
      hasFields(updated, INSTANCE_FIELDS, 'instance');
      assert.equal(updated.name, body.name);
      assert.deepEqual(updated.tags, body.tags);
      await ok(await hub.call('/ping')); // the configuration was kept
    });

    test(`PUT /instances/{id} with the instance as GET returned it (nulls, masked secrets) → 200 — ${PAGES.instances}`, async () => {
      const read = await ok(await srv.api(`/instances/${created.id}`));
      const back = await ok(
        await srv.api(`/instances/${created.id}`, { method: 'PUT', json: { name: read.name, tags: read.tags, configuration: read.configuration } }),
      );
      assert.deepEqual(back.configuration, read.configuration);
      await ok(await hub.call('/ping'));
    });

    test(`PATCH /instances/{id} with {id, tags} replaces the tags — ${PAGES.instances}`, async () => {
      const updated = await ok(await srv.api(`/instances/${created.id}`, { method: 'PATCH', json: { id: created.id, tags: ['tag1', 'tag2', 'tag3'] } }));
      assert.deepEqual(updated.tags, ['tag1', 'tag2', 'tag3']);
    });

    test(`DELETE /instances/{id} → 200 — ${PAGES.instances}`, async () => {
      const other = await ok(
        await srv.api('/instances', { method: 'POST', json: { element: { key: element }, configuration: await documentedConfig(), name: 'to-delete' } }),
      );
      const res = await srv.api(`/instances/${other.id}`, { method: 'DELETE' });
      assert.equal(res.status, 200);
      assert.equal((await srv.api(`/instances/${other.id}`)).status, 404);
    });

    // ---- catalog: elements --------------------------------------------------------------

    test(`GET /elements → every element with the documented fields — ${PAGES.elements}`, async () => {
      const list = await ok(await srv.api('/elements'));
      const mine = list.find((e: any) => e.key === element);
      hasFields(mine, ELEMENT_FIELDS, 'element');
      assert.equal(mine.id, created.element.id);
    });

    test(`GET /elements/keys → the element keys — ${PAGES.elements}`, async () => {
      const keys = await ok(await srv.api('/elements/keys'));
      assert.ok(Array.isArray(keys) && keys.every((k: unknown) => typeof k === 'string'));
      assert.ok(keys.includes(element));
    });

    test(`GET /elements/{key} — ${PAGES.elements}`, async () => {
      const one = await ok(await srv.api(`/elements/${element}`));
      hasFields(one, [...INSTANCE_ELEMENT_FIELDS, 'configuration'], 'element');
      assert.equal(one.key, element);
    });

    test(`GET /elements/{id}: the numeric id every instance carries — ${PAGES.elements}`, async () => {
      const byId = await ok(await srv.api(`/elements/${created.element.id}`));
      assert.equal(byId.key, element);
      assert.deepEqual(byId, await ok(await srv.api(`/elements/${element}`)));
    });

    test(`GET /elements/{key} of an element that does not exist → an error response (404) — ${PAGES.elements}`, async () => {
      for (const missing of ['nosuchelement', '999999']) {
        const body = await expectStatus(await srv.api(`/elements/${missing}`), 404);
        assert.match(body.message, new RegExp(missing));
      }
    });

    test(`GET /elements/{keyOrId}/metadata: configuration, objects and their fields — ${PAGES.elements}`, async () => {
      for (const keyOrId of [element, String(created.element.id)]) {
        const meta = await ok(await srv.api(`/elements/${keyOrId}/metadata`));
        hasFields(meta, ['id', 'key', 'name', 'hub', 'configuration', 'objects'], 'metadata');
        assert.equal(meta.key, element);
        assert.ok(meta.configuration.some((c: any) => c.key === 'event.notification.callback.url'));
        assert.deepEqual(Object.keys(meta.objects).sort(), ['files', 'folders']);
        assert.ok(meta.objects.files.fields.some((f: any) => f.vendorPath === 'path' && f.type === 'string'));
      }
    });

    test(`GET /elements/{id}/instances: an element's instances by its id — ${PAGES.elements}`, async () => {
      const list = await ok(await srv.api(`/elements/${created.element.id}/instances`));
      assert.ok(list.some((i: any) => i.id === created.id));
      const one = await ok(await srv.api(`/elements/${created.element.id}/instances/${created.id}`));
      assert.equal(one.id, created.id);
    });

    // ---- catalog: hubs ------------------------------------------------------------------

    test(`GET /hubs → {id, name, key, description} — ${PAGES.hubs}`, async () => {
      const list = await ok(await srv.api('/hubs'));
      hasFields(list.find((h: any) => h.key === 'documents'), ['id', 'name', 'key', 'description'], 'hub');
    });

    test(`GET /hubs/keys — ${PAGES.hubs}`, async () => {
      assert.ok((await ok(await srv.api('/hubs/keys'))).includes('documents'));
    });

    test(`GET /hubs/{key} → {id, name, key, description, active} — ${PAGES.hubs}`, async () => {
      const one = await ok(await srv.api('/hubs/documents'));
      hasFields(one, ['id', 'name', 'key', 'description', 'active'], 'hub');
      assert.equal(one.key, 'documents');
    });

    test(`GET /hubs/{key}/elements — ${PAGES.hubs}`, async () => {
      const list = await ok(await srv.api('/hubs/documents/elements'));
      hasFields(list.find((e: any) => e.key === element), ELEMENT_FIELDS, 'element');
    });

    test(`GET /hubs/documents/objects → files, folders (Element or Organization credentials) — ${PAGES.hub}`, async () => {
      assert.deepEqual(await ok(await hub.call('/objects')), ['files', 'folders']);
      assert.deepEqual(await ok(await srv.api('/hubs/documents/objects')), ['files', 'folders']);
    });

    test(`GET /hubs/documents/objects/{name}/metadata → fields and types — ${PAGES.hub}`, async () => {
      for (const name of ['files', 'folders']) {
        const meta = await ok(await hub.call(`/objects/${name}/metadata`));
        assert.equal(meta.name, name);
        const paths = meta.fields.map((f: any) => f.vendorPath);
        for (const f of ['id', 'name', 'path', 'directory', 'size', 'createdDate', 'modifiedDate', 'tags', 'parentFolderId']) assert.ok(paths.includes(f), f);
        assert.ok(meta.fields.every((f: any) => typeof f.type === 'string'));
      }
      await expectStatus(await hub.call('/objects/contacts/metadata'), 404);
    });

    // ---- documents hub ------------------------------------------------------------------

    test(`GET /hubs/documents/ping — ${PAGES.hub}`, async () => {
      const ping = await ok(await hub.call('/ping'));
      assert.equal(ping.endpoint, element);
    });

    test(`GET /hubs/documents/storage — ${PAGES.hub}`, async () => {
      hasFields(await ok(await hub.call('/storage')), ['total', 'used', 'shared'], 'storage');
    });

    test(`GET /hubs/documents/me: the backend account — ${PAGES.hub}`, async () => {
      const me = await ok(await hub.call('/me'));
      hasFields(me, ['id', 'name', 'emailAddress'], 'me');
      assert.equal(typeof me.id, 'string');
    });

    test(`POST /hubs/documents/files (multipart) and GET /files, /files/{id} — ${PAGES.hub}`, async () => {
      const content = randomBytes(5000);
      const obj = await upload(hub, '/up/one.bin', content, '&overwrite=true');
      isDocumentObject(obj, '/up/one.bin', false);
      assert.equal(obj.size, content.length);
      assert.deepEqual(await download(hub, '/up/one.bin'), content);
      const byId = await hub.call(`/files/${idOf('/up/one.bin')}`);
      assert.equal(byId.status, 200);
      assert.deepEqual(Buffer.from(await byId.arrayBuffer()), content);
    });

    test(`GET /files/metadata and /files/{id}/metadata — ${PAGES.hub}`, async () => {
      await upload(hub, '/md/a.txt', 'abc');
      isDocumentObject(await ok(await hub.call(`/files/metadata${q('/md/a.txt')}`)), '/md/a.txt', false);
      isDocumentObject(await ok(await hub.call(`/files/${idOf('/md/a.txt')}/metadata`)), '/md/a.txt', false);
    });

    test(`GET /files/metadata?raw=true → the backend's own object under raw — ${PAGES.hub}`, async () => {
      await upload(hub, '/raw/a.txt', 'abcd');
      const meta = await ok(await hub.call(`/files/metadata${q('/raw/a.txt')}&raw=true`));
      isDocumentObject(meta, '/raw/a.txt', false);
      assert.ok(meta.raw && typeof meta.raw === 'object', JSON.stringify(meta));
      assert.ok(Object.keys(meta.raw).length > 0);
      const plain = await ok(await hub.call(`/files/metadata${q('/raw/a.txt')}`));
      assert.equal(plain.raw, undefined, 'raw only when asked');
    });

    test(`GET /folders/metadata?raw=true — ${PAGES.hub}`, async () => {
      await upload(hub, '/rawdir/x.txt', 'x');
      const meta = await ok(await hub.call(`/folders/metadata${q('/rawdir')}&raw=true`));
      isDocumentObject(meta, '/rawdir', true);
      assert.ok(meta.raw && typeof meta.raw === 'object');
    });

    test(`PATCH /files/metadata {path} moves into missing folders, creating them — ${PAGES.hub}`, async () => {
      await upload(hub, '/mv/a.txt', 'move me');
      const moved = await ok(await hub.call(`/files/metadata${q('/mv/a.txt')}`, { method: 'PATCH', json: { path: '/mv/new/deeper/b.txt' } }));
      isDocumentObject(moved, '/mv/new/deeper/b.txt', false);
      assert.equal((await download(hub, '/mv/new/deeper/b.txt')).toString(), 'move me');
      isDocumentObject(await ok(await hub.call(`/folders/metadata${q('/mv/new')}`)), '/mv/new', true);
    });

    test(`PATCH /folders/metadata?path=<a file> {path} renames the file (the sftp element did) — ${PAGES.hub}, ${PAGES.sftpTips}`, async () => {
      await upload(hub, '/kinds/a.jpg', 'jpeg');
      const renamed = await ok(await hub.call(`/folders/metadata${q('/kinds/a.jpg')}`, { method: 'PATCH', json: { path: '/kinds/b.jpg' } }));
      isDocumentObject(renamed, '/kinds/b.jpg', false);
      assert.equal((await download(hub, '/kinds/b.jpg')).toString(), 'jpeg');
      await expectStatus(await hub.call(`/files/metadata${q('/kinds/a.jpg')}`), 404);
    });

    test(`PATCH /files/{id}/metadata of a folder renames the folder — ${PAGES.hub}`, async () => {
      await upload(hub, '/kinds2/dir/in.txt', 'in');
      const renamed = await ok(await hub.call(`/files/${idOf('/kinds2/dir')}/metadata`, { method: 'PATCH', json: { path: '/kinds2/dir2' } }));
      isDocumentObject(renamed, '/kinds2/dir2', true);
      assert.equal((await download(hub, '/kinds2/dir2/in.txt')).toString(), 'in');
    });

    test(`POST /files/copy into missing folders creates them — ${PAGES.hub}`, async () => {
      await upload(hub, '/cp/src.txt', 'copy');
      const copy = await ok(await hub.call(`/files/copy${q('/cp/src.txt')}`, { method: 'POST', json: { path: '/cp/a/b/dst.txt' } }));
      isDocumentObject(copy, '/cp/a/b/dst.txt', false);
      assert.equal((await download(hub, '/cp/a/b/dst.txt')).toString(), 'copy');
    });

    test(`POST /folders/copy into missing folders creates them — ${PAGES.hub}`, async () => {
      await upload(hub, '/fcp/src/in.txt', 'in');
      const copy = await ok(await hub.call(`/folders/${idOf('/fcp/src')}/copy`, { method: 'POST', json: { path: '/fcp/x/y/dst' } }));
      isDocumentObject(copy, '/fcp/x/y/dst', true);
      assert.equal((await download(hub, '/fcp/x/y/dst/in.txt')).toString(), 'in');
    });

    test(`POST /folders with the documented body (directory, createdDate "", size 0) — ${PAGES.hub}`, async () => {
      const body = { path: '/made/CETestFolder', name: 'CETestFolder', directory: true, createdDate: '', size: 0, tags: ['t1'] };
      const made = await ok(await hub.call('/folders', { method: 'POST', json: body }));
      isDocumentObject(made, '/made/CETestFolder', true);
      assert.deepEqual(made.tags, ['t1']);
    });

    test(`GET /folders/contents with page, pageSize, fetchTags, isoDates, where, orderBy → counts in headers — ${PAGES.hub}`, async () => {
      for (const n of ['c.txt', 'a.txt', 'b.pdf']) await upload(hub, `/list/${n}`, n, '&tags[]=x');
      await ok(await hub.call('/folders', { method: 'POST', json: { path: '/list/sub' } }));
      const first = await hub.call(`/folders/contents${q('/list')}&page=1&pageSize=2&fetchTags=true&isoDates=true&orderBy=${encodeURIComponent('directory desc, name asc')}`);
      const page1 = await ok(first);
      assert.deepEqual(page1.map((o: any) => o.name), ['sub', 'a.txt']);
      assert.equal(first.headers.get('elements-total-count'), '4');
      assert.equal(first.headers.get('elements-returned-count'), '2');
      const second = await ok(await hub.call(`/folders/contents${q('/list')}&page=2&pageSize=2&orderBy=${encodeURIComponent('directory desc, name asc')}`));
      assert.deepEqual(second.map((o: any) => o.name), ['b.pdf', 'c.txt']);
      assert.deepEqual(page1[1].tags, ['x']);
      for (const o of page1) if (o.modifiedDate !== null) assert.match(o.modifiedDate, ISO);
      const filtered = await hub.call(`/folders/contents${q('/list')}&where=${encodeURIComponent("extension='txt' and directory=false")}`);
      assert.deepEqual((await ok(filtered)).map((o: any) => o.name).sort(), ['a.txt', 'c.txt']);
      assert.equal(filtered.headers.get('elements-total-count'), '2');
    });

    test(`GET /folders/{id}/contents and nextPage — ${PAGES.hub}, ${PAGES.nextPage}`, async () => {
      for (let i = 0; i < 5; i++) await upload(hub, `/paged/f${i}.txt`, `${i}`);
      const { items, pages } = await allPages(hub, `/folders/${idOf('/paged')}/contents`, 2);
      assert.equal(items.length, 5);
      assert.equal(pages, 3);
    });

    test(`GET /search?path=/ without text lists the tree recursively, paged — ${PAGES.hub}`, async () => {
      await upload(hub, '/tree/a/1.txt', '1');
      await upload(hub, '/tree/a/b/2.txt', '2');
      await upload(hub, '/tree/3.txt', '3');
      const res = await hub.call(`/search?path=${encodeURIComponent('/tree')}`);
      const found = await ok(res);
      assert.deepEqual(found.map((o: any) => o.path).sort(), ['/tree/3.txt', '/tree/a', '/tree/a/1.txt', '/tree/a/b', '/tree/a/b/2.txt']);
      assert.equal(res.headers.get('elements-total-count'), '5');
      const paged = await allPages(hub, `/search?path=${encodeURIComponent('/tree')}`, 2);
      assert.equal(paged.items.length, 5);
      assert.equal(paged.pages, 3);
      const page2 = await ok(await hub.call(`/search?path=${encodeURIComponent('/tree')}&page=2&pageSize=2`));
      assert.equal(page2.length, 2);
    });

    test(`GET /search with no parameter at all, and with only paging → 200 — ${PAGES.hub}`, async () => {
      await upload(hub, '/anywhere/x.txt', 'x');
      const all = await ok(await hub.call('/search'));
      assert.ok(all.some((o: any) => o.path === '/anywhere/x.txt'));
      const one = await hub.call('/search?pageSize=1&page=1');
      assert.equal((await ok(one)).length, 1);
      assert.ok(one.headers.get('elements-next-page-token'));
    });

    test(`GET /search with text, path, calculateFolderPath, orderBy, startDate/endDate — ${PAGES.hub}`, async () => {
      await upload(hub, '/srch/Report-2024.pdf', 'r');
      await upload(hub, '/srch/deep/annual report.txt', 'a');
      await upload(hub, '/srch/other.txt', 'o');
      const url = `/search?text=report&path=${encodeURIComponent('/srch')}&calculateFolderPath=true&orderBy=${encodeURIComponent('name desc')}`;
      const found = await ok(await hub.call(url));
      assert.deepEqual(found.map((o: any) => o.name), ['annual report.txt', 'Report-2024.pdf']);
      for (const o of found) assert.ok(o.path.startsWith('/srch/'));
      const since = encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString());
      const until = encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString());
      const inRange = await ok(await hub.call(`/search?text=report&path=/srch&startDate=${since}&endDate=${until}`));
      assert.equal(inRange.length, 2);
      const future = encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString());
      assert.deepEqual(await ok(await hub.call(`/search?text=report&path=/srch&startDate=${future}`)), []);
      await expectStatus(await hub.call('/search?startDate=yesterday'), 400);
    });

    test(`DELETE /files?emptyTrash=true and /files/{id}?emptyTrash=false → 200 — ${PAGES.hub}`, async () => {
      await upload(hub, '/trash/a.txt', 'a');
      await upload(hub, '/trash/b.txt', 'b');
      assert.equal((await hub.call(`/files${q('/trash/a.txt')}&emptyTrash=true`, { method: 'DELETE' })).status, 200);
      assert.equal((await hub.call(`/files/${idOf('/trash/b.txt')}?emptyTrash=false`, { method: 'DELETE' })).status, 200);
      await expectStatus(await hub.call(`/files/metadata${q('/trash/a.txt')}`), 404);
    });

    test(`DELETE /folders?emptyTrash=true → 200 — ${PAGES.hub}`, async () => {
      await upload(hub, '/trashdir/in/a.txt', 'a');
      assert.equal((await hub.call(`/folders${q('/trashdir/in')}&emptyTrash=true`, { method: 'DELETE' })).status, 200);
      await expectStatus(await hub.call(`/folders/metadata${q('/trashdir/in')}`), 404);
    });

    test(`GET /files/links — ${PAGES.hub}`, async () => {
      await upload(hub, '/lnk/a.txt', 'linked');
      const links = await ok(await hub.call(`/files/links${q('/lnk/a.txt')}`));
      hasFields(links, ['expires', 'cloudElementsLink', 'providerViewLink', 'providerLink'], 'links');
      const res = await fetch(links.cloudElementsLink);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'linked');
    });

    test(`GET /folders/links and /folders/{id}/links → a link that lists the folder — ${PAGES.hub}`, async () => {
      await upload(hub, '/flnk/a.txt', 'a');
      for (const route of [`/folders/links${q('/flnk')}`, `/folders/${idOf('/flnk')}/links`]) {
        const links = await ok(await hub.call(route));
        hasFields(links, ['expires', 'cloudElementsLink', 'providerViewLink', 'providerLink'], 'links');
        const res = await fetch(links.cloudElementsLink);
        assert.equal(res.status, 200);
        assert.deepEqual((await res.json()).map((o: any) => o.path), ['/flnk/a.txt']);
      }
    });

    test(`GET /files/revisions and /files/{id}/revisions[/{revisionId}] — ${PAGES.revisions}`, async () => {
      await upload(hub, '/rev/a.txt', 'version one');
      const list = await ok(await hub.call(`/files/revisions${q('/rev/a.txt')}`));
      assert.ok(Array.isArray(list) && list.length >= 1);
      hasFields(list[0], ['id', 'fileId', 'fileName', 'path', 'size', 'modifiedDate', 'current'], 'revision');
      assert.equal(list[0].fileId, idOf('/rev/a.txt'));
      assert.equal(list[0].current, true);
      assert.equal(list[0].size, 'version one'.length);
      assert.deepEqual(await ok(await hub.call(`/files/${idOf('/rev/a.txt')}/revisions`)), list);
      const rid = encodeURIComponent(list[0].id);
      assert.deepEqual(await ok(await hub.call(`/files/revisions/${rid}${q('/rev/a.txt')}`)), list[0]);
      assert.deepEqual(await ok(await hub.call(`/files/${idOf('/rev/a.txt')}/revisions/${rid}`)), list[0]);
      await expectStatus(await hub.call(`/files/${idOf('/rev/a.txt')}/revisions/no-such-revision`), 404);
      await expectStatus(await hub.call(`/files/revisions${q('/rev')}`), 400);
    });

    test(`an upload over a file changes its current revision — ${PAGES.revisions}`, async () => {
      await upload(hub, '/rev2/a.txt', 'one');
      const [before] = await ok(await hub.call(`/files/revisions${q('/rev2/a.txt')}`));
      await new Promise((r) => setTimeout(r, 1100)); // backends with second-resolution dates
      await upload(hub, '/rev2/a.txt', 'three', '&overwrite=true');
      const after = await ok(await hub.call(`/files/revisions${q('/rev2/a.txt')}`));
      assert.equal(after[0].current, true);
      assert.equal(after[0].size, 5);
      assert.notEqual(after[0].id, before.id);
    });

    test(`multipart field "file" with tags[] in the query — ${PAGES.hub}`, async () => {
      const res = await hub.call(`/files${q('/tagged/a.txt')}&tags[]=one&tags[]=two`, { method: 'POST', body: multipartFile('a', 'a.txt') });
      assert.deepEqual((await ok(res)).tags.sort(), ['one', 'two']);
    });
  });
}
