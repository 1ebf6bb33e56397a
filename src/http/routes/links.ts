/**
 * Downloads through Ferry-signed links: no Authorization header, the signed token is the key.
 */
import type { FastifyInstance } from 'fastify';
import { forbidden, notFound } from '../../errors.js';
import { DocumentsService } from '../../documents/service.js';
import type { PluginOptions } from './common.js';
import { sendDownload } from './documents.js';

export async function linkRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  app.get<{ Params: { token: string } }>('/links/:token', async (request, reply) => {
    const { organizationId, instanceId, path } = services.links.verify(request.params.token);
    const instance = await services.store.getInstance(organizationId, instanceId);
    if (!instance) throw notFound('The instance of this link no longer exists');
    // A link is a hub read like any other: a disabled instance serves nothing (DESIGN §1.3).
    if (instance.disabled) throw forbidden(`Instance ${instance.id} is disabled; links to its files work again once it is enabled`);
    const docs = new DocumentsService(services.instances.element(instance), instance.id, services.store);
    return sendDownload(reply, await docs.download(path));
  });
}
