/**
 * Discovery: a hub's objects (`GET /hubs/{hub}/objects`) and each object's fields
 * (`GET /hubs/{hub}/objects/{name}/metadata`), which platform clients and tools call first.
 * The answer is the same for every instance of the hub, so these routes take either identity a
 * client holds: User + Element (as the hub's other routes) or User + Organization (as the
 * catalog's).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HUBS } from '../../elements/catalog.js';
import { hubObjects } from '../../documents/objects.js';
import { notFound } from '../../errors.js';
import { parseAuthorization } from '../../identity/authorization.js';
import { hubAuth, platformAuth, type PluginOptions } from './common.js';

export async function discoveryRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  const asHub = hubAuth(services);
  const asPlatform = platformAuth(services);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    let withElement = false;
    try {
      withElement = Boolean(parseAuthorization(request.headers.authorization).element);
    } catch {
      // A malformed header: the platform hook answers it with its own 401.
    }
    return withElement ? asHub(request) : asPlatform(request);
  });

  // One static route per hub: `/hubs/documents/...` already has static routes of its own.
  for (const hub of HUBS) {
    const objects = hubObjects(hub.key) ?? [];
    const schema = { tags: [hub.key] };
    app.get(`/hubs/${hub.key}/objects`, { schema }, async () => objects.map((o) => o.name));
    app.get<{ Params: { name: string } }>(`/hubs/${hub.key}/objects/:name/metadata`, { schema }, async (request) => {
      const object = objects.find((o) => o.name === request.params.name);
      if (!object) {
        throw notFound(`The ${hub.key} hub has no object "${request.params.name}"; it has: ${objects.map((o) => o.name).join(', ')}`);
      }
      return { name: object.name, description: object.description, fields: object.fields };
    });
  }
}
