/**
 * The catalog: elements (connectors) and hubs, with each element's configuration keys. Every
 * `/elements/{keyOrId}` route takes an element's key or its numeric id, as the platform does.
 */
import type { FastifyInstance } from 'fastify';
import { ELEMENTS, HUBS } from '../../elements/catalog.js';
import { notFound } from '../../errors.js';
import { platformAuth, type PluginOptions } from './common.js';
import { elementMetadata, presentElement } from './element-object.js';

export { presentElement };

function hubNamed(key: string) {
  const hub = HUBS.find((h) => h.key === key);
  if (!hub) throw notFound(`No hub "${key}"; available hubs: ${HUBS.map((h) => h.key).join(', ')}`);
  return hub;
}

export async function platformRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  app.addHook('onRequest', platformAuth(services));

  app.get('/elements', async () => ELEMENTS.map(presentElement));

  app.get('/elements/keys', async () => ELEMENTS.map((e) => e.key));

  app.get<{ Params: { key: string } }>('/elements/:key', async (request) =>
    presentElement(services.instances.definition(request.params.key)),
  );

  app.get<{ Params: { key: string } }>('/elements/:key/metadata', async (request) =>
    elementMetadata(services.instances.definition(request.params.key)),
  );

  app.get('/hubs', async () =>
    HUBS.map((h) => ({ ...h, active: true, elements: ELEMENTS.filter((e) => e.hub === h.key).map((e) => e.key) })),
  );

  app.get('/hubs/keys', async () => HUBS.map((h) => h.key));

  app.get<{ Params: { hub: string } }>('/hubs/:hub', async (request) => {
    const hub = hubNamed(request.params.hub);
    return { ...hub, active: true, elements: ELEMENTS.filter((e) => e.hub === hub.key).map((e) => e.key) };
  });

  app.get<{ Params: { hub: string } }>('/hubs/:hub/elements', async (request) => {
    const hub = hubNamed(request.params.hub);
    return ELEMENTS.filter((e) => e.hub === hub.key).map(presentElement);
  });
}
