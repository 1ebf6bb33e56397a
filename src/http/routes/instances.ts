/**
 * Instance CRUD (DESIGN §1.3), under /instances and, identically, /elements/{key}/instances
 * (where the key must match the instance's element).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalid, notFound } from '../../errors.js';
import { ELEMENTS } from '../../elements/catalog.js';
import { configKeys, MASK, type InstanceService } from '../../instances/service.js';
import type { Instance, Store } from '../../store/store.js';
import { identityOf, intParam, platformAuth, tagList, type PluginOptions } from './common.js';
import { elementSummary } from './element-object.js';
import { INSTANCE_DEFAULTS, withDocumentedKeys, withoutUnsetDocumentedKeys } from '../../instances/documented.js';

const instanceBody = {
  type: 'object',
  properties: {
    element: {
      type: 'object',
      properties: { key: { type: 'string', maxLength: 64 }, id: { type: 'integer' } },
    },
    name: { type: 'string', minLength: 1, maxLength: 255 },
    tags: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 255 }, maxItems: 100 },
    configuration: { type: 'object', maxProperties: 64 },
    disabled: { type: 'boolean' },
  },
} as const;

interface InstanceBody {
  element?: { key?: string; id?: number };
  name?: string;
  tags?: string[];
  configuration?: Record<string, unknown>;
}

const CALLBACK_KEY = 'event.notification.callback.url';

/**
 * A configured callback URL must at least be an absolute http(s) URL without credentials. Where
 * it may point (the egress policy) is checked when a request uses it — at accept and send time —
 * because FERRY_EGRESS_ALLOW may change between configuring an instance and using it.
 */
function checkCallbackSyntax(configuration: Record<string, unknown> | undefined): void {
  const value = configuration?.[CALLBACK_KEY];
  if (value === undefined || value === null || value === '') return;
  let url: URL | null = null;
  try {
    url = typeof value === 'string' && value.length <= 2048 ? new URL(value) : null;
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw invalid(`${CALLBACK_KEY} must be an absolute http:// or https:// URL of at most 2048 characters`);
  }
  if (url.username || url.password) {
    throw invalid(`${CALLBACK_KEY} must not contain credentials (user:password@); receivers can check the webhook signature instead`);
  }
}

/** Platform clients may name the element by its numeric id (`{"element": {"id": 1}}`). */
function keyOfElementId(id: number | undefined): string | undefined {
  if (id === undefined) return undefined;
  const def = ELEMENTS.find((e) => e.id === id);
  if (!def) throw notFound(`No element with id ${id}; GET /elements lists them`);
  return def.key;
}

/** The platform's instance JSON; `token` only when just created. */
async function present(instances: InstanceService, store: Store, instance: Instance, token?: string) {
  const def = instances.definition(instance.elementKey);
  const user = await store.getUser(instance.userId);
  const configuration = instances.masked(instance);
  return {
    id: instance.id,
    name: instance.name,
    ...(token ? { token } : {}),
    element: elementSummary(def),
    configuration: withDocumentedKeys(configuration, configKeys(def).map((k) => k.key)),
    tags: instance.tags,
    valid: instance.valid,
    disabled: instance.disabled,
    eventsEnabled: configuration['event.notification.enabled'] === 'true',
    ...INSTANCE_DEFAULTS,
    createdDate: instance.createdDate.toISOString(),
    updatedDate: instance.updatedDate.toISOString(),
    user: user
      ? { id: user.id, emailAddress: user.emailAddress, firstName: user.firstName, lastName: user.lastName }
      : null,
  };
}

export async function instanceRoutes(app: FastifyInstance, { services }: PluginOptions): Promise<void> {
  const { instances, store } = services;
  const elementKeys = (key: string) => configKeys(instances.definition(key)).map((k) => k.key);
  app.addHook('onRequest', platformAuth(services));

  /** The instance named by the URL, checked against the element key when the URL has one. */
  async function target(request: FastifyRequest<{ Params: { id: string; key?: string } }>): Promise<Instance> {
    const id = intParam(request.params.id, 'instance id');
    const instance = await instances.get(identityOf(request).organizationId, id);
    if (request.params.key !== undefined && instances.definition(request.params.key).key !== instance.elementKey) {
      throw notFound(`Instance ${id} is not an instance of element ${request.params.key}`);
    }
    return instance;
  }

  for (const base of ['/instances', '/elements/:key/instances']) {
    app.post<{ Body: InstanceBody; Params: { key?: string } }>(base, { schema: { body: instanceBody } }, async (request) => {
      const body = request.body ?? {};
      // The URL may name the element by key or id (the platform accepts both).
      const urlKey = request.params.key !== undefined ? instances.definition(request.params.key).key : undefined;
      const elementKey = urlKey ?? body.element?.key ?? keyOfElementId(body.element?.id);
      if (!elementKey) throw invalid('Name the element: {"element": {"key": "localfs"}, ...}');
      if (urlKey && body.element?.key && body.element.key !== urlKey) {
        throw invalid(`The body names element ${body.element.key} but the URL names ${request.params.key}`);
      }
      if (!body.name) throw invalid('An instance needs a "name"');
      checkCallbackSyntax(body.configuration);
      const identity = identityOf(request);
      const { instance, token } = await instances.create(identity.user, {
        elementKey,
        name: body.name,
        tags: body.tags ?? [],
        configuration: withoutUnsetDocumentedKeys(body.configuration, elementKeys(elementKey)) ?? {},
      });
      return present(instances, store, instance, token);
    });

    app.get<{ Params: { key?: string }; Querystring: Record<string, unknown> }>(base, async (request) => {
      const tags = tagList(request.query['tags[]'] ?? request.query.tags);
      const elementKey = request.params.key !== undefined ? instances.definition(request.params.key).key : undefined;
      const list = await store.listInstances(identityOf(request).organizationId, { elementKey, tags });
      return Promise.all(list.map((i) => present(instances, store, i)));
    });

    app.get<{ Params: { id: string; key?: string } }>(`${base}/:id`, async (request) =>
      present(instances, store, await target(request)),
    );

    for (const method of ['PUT', 'PATCH'] as const) {
      app.route<{ Params: { id: string; key?: string }; Body: InstanceBody }>({
        method,
        url: `${base}/:id`,
        schema: { body: instanceBody },
        handler: async (request) => {
          const instance = await target(request);
          const body = request.body ?? {};
          if (body.element?.key && body.element.key !== instance.elementKey) {
            throw invalid(`An instance cannot change its element (it is ${instance.elementKey})`);
          }
          if (method === 'PUT' && !body.name) throw invalid('PUT replaces the instance: send its "name" (and configuration)');
          checkCallbackSyntax(body.configuration);
          const updated = await instances.update(
            instance.organizationId,
            instance.id,
            {
              name: body.name,
              tags: body.tags,
              configuration: withoutUnsetDocumentedKeys(body.configuration, elementKeys(instance.elementKey)),
            },
            method === 'PUT',
          );
          return present(instances, store, updated);
        },
      });
    }

    app.delete<{ Params: { id: string; key?: string } }>(`${base}/:id`, async (request, reply) => {
      const instance = await target(request);
      await instances.remove(instance.organizationId, instance.id);
      reply.status(200).send();
    });

    app.get<{ Params: { id: string; key?: string } }>(`${base}/:id/configuration`, async (request) => {
      const instance = await target(request);
      const masked = instances.masked(instance);
      return configKeys(instances.definition(instance.elementKey))
        .map((k, index) => ({
          id: index + 1,
          key: k.key,
          name: k.name,
          propertyValue: masked[k.key] ?? null,
          secret: k.secret,
          required: k.required,
        }));
    });

    app.patch<{ Params: { id: string; key?: string; configId: string }; Body: { propertyValue?: unknown } }>(
      `${base}/:id/configuration/:configId`,
      {
        schema: {
          body: { type: 'object', required: ['propertyValue'], properties: { propertyValue: {} } },
        },
      },
      async (request) => {
        const instance = await target(request);
        const keys = configKeys(instances.definition(instance.elementKey));
        const { configId } = request.params;
        const key = /^\d+$/.test(configId) ? keys[Number(configId) - 1] : keys.find((k) => k.key === configId);
        if (!key) {
          throw notFound(`No configuration entry ${configId}; GET /instances/${instance.id}/configuration lists them`);
        }
        const value = request.body.propertyValue;
        if (value !== null && typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
          throw invalid('propertyValue must be a string');
        }
        checkCallbackSyntax({ [key.key]: value });
        const updated = await instances.update(
          instance.organizationId,
          instance.id,
          { configuration: { [key.key]: value === null ? '' : String(value) } },
          false,
        );
        const masked = instances.masked(updated);
        return {
          id: keys.indexOf(key) + 1,
          key: key.key,
          name: key.name,
          propertyValue: key.secret && masked[key.key] ? MASK : (masked[key.key] ?? null),
          secret: key.secret,
          required: key.required,
        };
      },
    );

    for (const [method, disabled] of [
      ['PUT', false],
      ['DELETE', true],
    ] as const) {
      app.route<{ Params: { id: string; key?: string } }>({
        method,
        url: `${base}/:id/enabled`,
        handler: async (request) => {
          const instance = await target(request);
          const updated = await instances.setDisabled(instance.organizationId, instance.id, disabled);
          return present(instances, store, updated);
        },
      });
    }
  }
}
