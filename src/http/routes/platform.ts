/**
 * The catalog: elements (connectors) and hubs, with each element's configuration keys.
 */
import type { FastifyInstance } from 'fastify';
import type { ElementDefinition } from '../../elements/element.js';
import { ELEMENTS, HUBS } from '../../elements/catalog.js';
import { notFound } from '../../errors.js';
import { configKeys } from '../../instances/service.js';
import { EVENTS_SUPPORT } from '../../changes/settings.js';
import { platformAuth, type PluginOptions } from './common.js';

/** An element as the catalog shows it. */
export function presentElement(def: ElementDefinition) {
  return {
    id: def.id,
    key: def.key,
    name: def.name,
    hub: def.hub,
    description: def.description,
    active: true,
    // Every element's changes are found by polling (src/changes/).
    events: { supported: EVENTS_SUPPORT.supported, methods: [...EVENTS_SUPPORT.methods] },
    configuration: configKeys(def).map((k) => ({
      key: k.key,
      name: k.name,
      required: k.required,
      secret: k.secret,
      defaultValue: k.default ?? null,
      description: k.description ?? null,
    })),
  };
}

export async function platformRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  app.addHook('onRequest', platformAuth(services));

  app.get('/elements', async () => ELEMENTS.map(presentElement));

  app.get<{ Params: { key: string } }>('/elements/:key', async (request) =>
    presentElement(services.instances.definition(request.params.key)),
  );

  app.get('/hubs', async () => HUBS.map((h) => ({ ...h, elements: ELEMENTS.filter((e) => e.hub === h.key).map((e) => e.key) })));

  app.get<{ Params: { hub: string } }>('/hubs/:hub/elements', async (request) => {
    const hub = HUBS.find((h) => h.key === request.params.hub);
    if (!hub) throw notFound(`No hub "${request.params.hub}"; available hubs: ${HUBS.map((h) => h.key).join(', ')}`);
    return ELEMENTS.filter((e) => e.hub === hub.key).map(presentElement);
  });
}
