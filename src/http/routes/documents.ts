/**
 * The documents hub (DESIGN §1.4). Every route exists by path (`?path=/a/b`) and by id
 * (`/{id}`, the path encoded twice). Routes only translate HTTP to the documents service; the
 * hooks of this plugin authenticate (User + Element) and, with `Elements-Async-Request: true`,
 * hand the request to the async intake instead of running it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PassThrough, type Readable } from 'node:stream';
import { invalid } from '../../errors.js';
import { DocumentsService, type DocumentObject } from '../../documents/service.js';
import { normalisePath, pathFromId, ROOT } from '../../documents/paths.js';
import { publicUrl } from '../../config.js';
import type { Services } from '../app.js';
import { API_BASE } from '../api-base.js';
import { flag, hubAuth, identityOf, pageHeaders, pagingQuery, tagList, type PluginOptions } from './common.js';
import { rawOf } from '../../documents/provider.js';
import { documentPlatformRoutes } from './documents-platform.js';

type Query = Record<string, unknown>;
type Req = FastifyRequest<{ Params: { id?: string }; Querystring: Query; Body: any }>;
type Handler = (request: Req, reply: FastifyReply) => Promise<unknown>;

const listQuery = {
  type: 'object',
  properties: {
    path: { type: 'string' },
    ...pagingQuery,
    where: { type: 'string', maxLength: 2000 },
    orderBy: { type: 'string', maxLength: 500 },
    fetchTags: { type: 'boolean' },
    text: { type: 'string', maxLength: 1000 },
    // The platform's page number (1-based), beside the nextPage token.
    page: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    // Accepted for compatibility: Ferry's dates are always ISO-8601 and paths always computed.
    isoDates: { type: 'boolean' },
    calculateFolderPath: { type: 'boolean' },
    // search: modified at or after startDate and before endDate (ISO-8601).
    startDate: { type: 'string', maxLength: 64 },
    endDate: { type: 'string', maxLength: 64 },
  },
} as const;

/** `?raw=true` on the metadata routes: the backend's own object under `raw`. */
const metadataQuery = {
  type: 'object',
  properties: { path: { type: 'string' }, raw: { type: 'boolean' } },
} as const;

/** An ISO-8601 instant from a query parameter, or a 400 naming it. */
function instant(value: unknown, name: string): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw invalid(`${name} must be an ISO-8601 date such as 2024-01-31T00:00:00Z`);
  return new Date(ms);
}

const pathBody = {
  type: 'object',
  properties: {
    path: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1 },
    tags: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 255 }, maxItems: 100 },
  },
} as const;

/**
 * `POST /folders` as the platform documents it: the folder object itself, so `directory`,
 * `size` and an empty `createdDate` ride along and are ignored.
 */
const folderBody = {
  type: 'object',
  properties: {
    ...pathBody.properties,
    directory: { type: 'boolean' },
    size: { type: 'number' },
    createdDate: { type: 'string', maxLength: 64 },
  },
} as const;

/** Streams a file with the headers a browser and the platform's clients expect. */
export function sendDownload(reply: FastifyReply, file: { object: DocumentObject; stream: Readable }): FastifyReply {
  const name = file.object.name;
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  reply
    .header('Content-Type', file.object.properties.mimeType ?? 'application/octet-stream')
    .header('Content-Length', String(file.object.size))
    .header('Content-Disposition', `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`);
  return reply.send(file.stream);
}

export async function documentRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  const { config, store } = services;
  app.addHook('onRequest', hubAuth(services));
  if (services.intake) {
    const intake = services.intake;
    app.addHook('preParsing', (request, reply, payload) => intake.capture(request, payload));
    app.addHook('preHandler', (request, reply, done) => intake.acceptIfAsync(request, reply, done));
    // A spooled body no job took is deleted before the answer leaves (and, if none left, after).
    app.addHook('onSend', (request, _reply, payload, done) => {
      if (!request.asyncSpool) return done(null, payload);
      intake.release(request).then(() => done(null, payload), done);
    });
    app.addHook('onResponse', (request, _reply, done) => {
      if (!request.asyncSpool) return done();
      intake.release(request).then(() => done(), done);
    });
  }

  /** The documents service of the request's instance; its change log is the request's. */
  function docs(request: FastifyRequest): DocumentsService {
    const instance = identityOf(request).instance;
    if (!instance) throw new Error('hub route without instance');
    // Only a replayed async job reports its change log (see the onSend hook in app.ts).
    const service = new DocumentsService(
      services.instances.element(instance),
      instance.id,
      store,
      Boolean(request.internal),
      request.job ?? services.syncJob,
    );
    request.changes = service.changes;
    return service;
  }

  /** The canonical path a request names, by id or `?path=`. */
  function target(request: Req, fallback?: string): string {
    if (request.params.id !== undefined) return pathFromId(request.params.id, config.maxPathLength);
    const raw = request.query.path;
    if (raw === undefined || raw === '') {
      if (fallback !== undefined) return fallback;
      throw invalid('The path query parameter is required, e.g. ?path=/folder/file.txt');
    }
    if (typeof raw !== 'string') throw invalid('path must be given once');
    return normalisePath(raw, config.maxPathLength);
  }

  function destination(body: unknown): string {
    const b = (body ?? {}) as { path?: unknown };
    if (typeof b.path !== 'string' || !b.path) throw invalid('The body must name the destination: {"path": "/destination"}');
    return normalisePath(b.path, config.maxPathLength);
  }

  /** Registers a route at `/<path>` and at its by-id twin. */
  function both(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    byPath: string,
    byId: string | null,
    options: { query?: object; body?: object },
    handler: Handler,
  ): void {
    const schema: Record<string, unknown> = { tags: ['documents'] };
    if (options.query) schema.querystring = options.query;
    if (options.body) schema.body = options.body;
    app.route({ method, url: `/hubs/documents${byPath}`, schema, handler: handler as any });
    if (byId) app.route({ method, url: `/hubs/documents${byId}`, schema, handler: handler as any });
  }

  both('GET', '/ping', null, {}, async (request) => {
    await docs(request).ping();
    return { dateTime: new Date().toISOString(), endpoint: identityOf(request).instance?.elementKey };
  });

  both('GET', '/storage', null, {}, async (request) => docs(request).storage());

  // ---- files ----------------------------------------------------------------------------

  both('POST', '/files', '/files/:id', {}, async (request) => {
    const path = target(request);
    refuseDescription(request.query.description);
    if (!request.isMultipart()) {
      throw invalid('Upload with Content-Type multipart/form-data and the file in a part named "file"');
    }
    let part: Awaited<ReturnType<typeof request.file>>;
    try {
      part = await request.file();
    } catch (e) {
      // Size and count limits carry a Fastify code (→ 413); anything else is a body the
      // multipart parser cannot read (no boundary, broken headers): the client's fault.
      if ((e as { code?: string })?.code) throw e;
      throw invalid('The multipart body cannot be parsed; send multipart/form-data with a boundary and a part named "file"');
    }
    if (!part) throw invalid('The multipart body has no part named "file"');
    // A body that ends inside the part makes the multipart plugin destroy the part's stream
    // without an error, often before this handler resumes; a pipeline reading it would then wait
    // forever. The element reads a pass-through instead, which fails with a 400 when the part
    // breaks (error, or closed before its end).
    const file = part.file;
    const body = new PassThrough();
    // The failure may come before the element starts reading; it sees the errored stream then.
    body.on('error', () => {});
    const broken = () => {
      if (!body.destroyed) body.destroy(invalid('The multipart body ended before the file part was complete'));
    };
    file.on('error', broken);
    file.on('close', () => {
      if (!file.readableEnded) broken();
    });
    if (file.destroyed && !file.readableEnded) broken();
    file.pipe(body);
    if (part.fieldname !== 'file') throw invalid(`The upload part must be named "file", not "${part.fieldname}"`);
    refuseDescription((part.fields as Record<string, unknown>).description);
    const fieldTags = Object.values(part.fields)
      .flat()
      .filter((f: any) => f && f.type === 'field' && (f.fieldname === 'tags[]' || f.fieldname === 'tags'))
      .map((f: any) => f.value);
    const tags = tagList(request.query['tags[]'] ?? request.query.tags ?? (fieldTags.length ? fieldTags : undefined));
    const object = await docs(request).upload(path, body, {
      overwrite: flag(request.query.overwrite, 'overwrite', false),
      tags,
      contentType: part.mimetype,
    });
    if (part.file.truncated) throw invalid('The upload was truncated');
    return object;
  });

  both('GET', '/files', '/files/:id', {}, async (request, reply) => sendDownload(reply, await docs(request).download(target(request))));

  both('DELETE', '/files', '/files/:id', {}, async (request, reply) => {
    // emptyTrash: accepted; Ferry's backends have no trash, a delete is final either way.
    flag(request.query.emptyTrash, 'emptyTrash', false);
    await docs(request).remove(target(request), 'file');
    return reply.status(200).send();
  });

  both('GET', '/files/metadata', '/files/:id/metadata', { query: metadataQuery }, async (request) => describe(request, false));

  both('PATCH', '/files/metadata', '/files/:id/metadata', { body: pathBody }, async (request) =>
    patchMetadata(request),
  );

  both('POST', '/files/copy', '/files/:id/copy', { body: pathBody }, async (request) => {
    const dest = destination(request.body);
    return docs(request).copy(target(request), dest, dest, {
      expect: 'file',
      overwrite: flag(request.query.overwrite, 'overwrite', false),
      tags: tagList((request.body as any)?.tags),
    });
  });

  both('GET', '/files/links', '/files/:id/links', {}, async (request) => links(request, 'file'));

  // A folder's link opens its listing (JSON) for as long as a file link would serve the file.
  both('GET', '/folders/links', '/folders/:id/links', {}, async (request) => links(request, 'folder'));

  async function links(request: Req, kind: 'file' | 'folder') {
    const path = kind === 'folder' ? target(request, ROOT) : target(request);
    const service = docs(request);
    await service.metadata(path, kind);
    const identity = identityOf(request);
    const expires = new Date(Date.now() + config.linkTtlSeconds * 1000);
    const token = services.links.sign(identity.organizationId, identity.instance!.id, path, expires);
    const link = `${publicUrl(config)}${API_BASE}/links/${token}`;
    const element = services.instances.element(identity.instance!);
    const providerLink =
      kind === 'file' && element.providerLink ? await element.providerLink(path, config.linkTtlSeconds) : null;
    return { expires: expires.toISOString(), cloudElementsLink: link, providerViewLink: providerLink ?? link, providerLink };
  }

  // ---- folders --------------------------------------------------------------------------

  both('POST', '/folders', null, { body: folderBody }, async (request) => {
    if ((request.body as any)?.directory === false) {
      throw invalid('POST /folders creates folders: send "directory": true or leave it out; upload files with POST /files');
    }
    let path = destination(request.body);
    if (typeof (request.body as any)?.name === 'string' && path !== ROOT) path = DocumentsService.renamed(path, (request.body as any).name);
    return docs(request).createFolder(path, tagList((request.body as any)?.tags));
  });

  both('DELETE', '/folders', '/folders/:id', {}, async (request, reply) => {
    flag(request.query.emptyTrash, 'emptyTrash', false);
    await docs(request).remove(target(request), 'folder');
    return reply.status(200).send();
  });

  both('GET', '/folders/contents', '/folders/:id/contents', { query: listQuery }, async (request, reply) => {
    const q = request.query as any;
    const page = await docs(request).list(target(request, ROOT), {
      pageSize: q.pageSize,
      nextPage: q.nextPage,
      page: q.page,
      where: q.where,
      orderBy: q.orderBy,
      fetchTags: q.fetchTags,
    });
    pageHeaders(reply, page.items.length, page.next);
    reply.header('Elements-Total-Count', String(page.total));
    return page.items;
  });

  both('GET', '/folders/metadata', '/folders/:id/metadata', { query: metadataQuery }, async (request) => describe(request, true));

  both('PATCH', '/folders/metadata', '/folders/:id/metadata', { body: pathBody }, async (request) =>
    patchMetadata(request),
  );

  both('POST', '/folders/copy', '/folders/:id/copy', { body: pathBody }, async (request) => {
    const requested = destination(request.body);
    const name = (request.body as any)?.name;
    const actual = typeof name === 'string' ? DocumentsService.renamed(requested, name) : requested;
    return docs(request).copy(target(request), requested, actual, {
      expect: 'folder',
      overwrite: flag(request.query.overwrite, 'overwrite', false),
      tags: tagList((request.body as any)?.tags),
    });
  });

  both('GET', '/search', null, { query: listQuery }, async (request, reply) => {
    const q = request.query as any;
    // Without text the platform lists everything under path (recursively, paged).
    const page = await docs(request).search(q.text || undefined, target(request, ROOT), {
      pageSize: q.pageSize,
      nextPage: q.nextPage,
      page: q.page,
      orderBy: q.orderBy,
      where: q.where,
      modifiedFrom: instant(q.startDate, 'startDate'),
      modifiedBefore: instant(q.endDate, 'endDate'),
    });
    pageHeaders(reply, page.items.length, page.next);
    reply.header('Elements-Total-Count', String(page.total));
    return page.items;
  });

  /** GET metadata: whatever the path names (either route), with `raw` when asked. */
  async function describe(request: Req, folderRoute: boolean) {
    const path = folderRoute ? target(request, ROOT) : target(request);
    const service = docs(request);
    const object = await service.metadata(path);
    if (!flag(request.query.raw, 'raw', false)) return object;
    const element = services.instances.element(identityOf(request).instance!);
    const raw = await rawOf(element, { path, directory: object.directory, size: object.size });
    return { ...object, raw };
  }

  await app.register(documentPlatformRoutes, { services, hub: { docs, target: (request, fallback) => target(request as Req, fallback) } });

  /** PATCH metadata: whichever route was used, it acts on what the path names (the platform's sftp element did). */
  async function patchMetadata(request: Req) {
    const path = target(request);
    const body = (request.body ?? {}) as { path?: string; name?: string; tags?: unknown };
    let dest: string | undefined = body.path !== undefined ? destination(body) : undefined;
    if (typeof body.name === 'string') dest = DocumentsService.renamed(dest ?? path, body.name);
    return docs(request).update(
      path,
      undefined,
      { path: dest, tags: tagList(body.tags) },
      flag(request.query.overwrite, 'overwrite', false),
    );
  }
}

/**
 * The platform's upload takes a `description`; Ferry has nowhere to keep one for every element,
 * and accepting it only to drop it would tell the client it was stored. So it is refused, with
 * what to do instead (issue 21; README "Uploads").
 */
function refuseDescription(value: unknown): void {
  if (value === undefined) return;
  throw invalid('Ferry does not store file descriptions: remove the description parameter (use tags[] to label a file)');
}

export type { Services };
