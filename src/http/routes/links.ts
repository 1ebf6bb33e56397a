/**
 * Downloads through Ferry-signed links: no Authorization header, the signed token is the key.
 * A file's link downloads it; a folder's link lists the folder.
 */
import type { FastifyInstance } from 'fastify';
import { forbidden, notFound } from '../../errors.js';
import { DocumentsService } from '../../documents/service.js';
import { MAX_PAGE_SIZE, pageHeaders, type PluginOptions } from './common.js';
import { sendDownload } from './documents.js';

export async function linkRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  app.get<{ Params: { token: string }; Querystring: { nextPage?: string } }>('/links/:token', async (request, reply) => {
    const { organizationId, instanceId, path } = services.links.verify(request.params.token);
    const instance = await services.store.getInstance(organizationId, instanceId);
    if (!instance) throw notFound('The instance of this link no longer exists');
    // A link is a hub read like any other: a disabled instance serves nothing (DESIGN §1.3).
    if (instance.disabled) throw forbidden(`Instance ${instance.id} is disabled; links to its files work again once it is enabled`);
    const docs = new DocumentsService(services.instances.element(instance), instance.id, services.store);
    // A folder's link (GET /folders/links) opens its listing, paged like /folders/contents.
    if ((await docs.metadata(path)).directory) {
      const nextPage = typeof request.query.nextPage === 'string' ? request.query.nextPage : undefined;
      const page = await docs.list(path, { pageSize: MAX_PAGE_SIZE, nextPage });
      pageHeaders(reply, page.items.length, page.next);
      reply.header('Elements-Total-Count', String(page.total));
      return page.items;
    }
    return sendDownload(reply, await docs.download(path));
  });
}
