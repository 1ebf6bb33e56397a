/**
 * The element object as the platform's catalog shows it (`GET /elements`, `/elements/{keyOrId}`,
 * the `element` of an instance): its documented fields, then Ferry's configuration keys. Fields
 * that describe platform features Ferry does not have (OAuth, bulk, transformations, trials,
 * cloning) are present with the value that says so, so strict clients can deserialise them.
 */
import type { ElementDefinition } from '../../elements/element.js';
import { profileOf } from '../../elements/presentation.js';
import { hubObjects } from '../../documents/objects.js';
import { configKeys } from '../../instances/service.js';

/** The element without its configuration keys (what an instance embeds). */
export function elementSummary(def: ElementDefinition) {
  const profile = profileOf(def);
  return {
    id: def.id,
    key: def.key,
    name: def.name,
    hub: def.hub,
    description: def.description,
    image: profile.image,
    active: true,
    deleted: false,
    typeOauth: false,
    trialAccount: false,
    configDescription: profile.configDescription,
    signupURL: profile.signupURL,
    transformationsEnabled: false,
    bulkDownloadEnabled: false,
    bulkUploadEnabled: false,
    cloneable: false,
    authentication: { type: profile.authenticationType },
    protocolType: profile.protocolType,
    parameters: [] as unknown[],
    private: false,
  };
}

/** The element's configuration keys, in the platform's shape plus Ferry's `secret`. */
export function elementConfiguration(def: ElementDefinition) {
  return configKeys(def).map((k, index) => ({
    id: index + 1,
    key: k.key,
    name: k.name,
    description: k.description ?? null,
    defaultValue: k.default ?? null,
    type: k.secret ? 'PASSWORD' : 'TEXTFIELD_1000',
    required: k.required,
    secret: k.secret,
    hideFromConsole: false,
    displayOrder: index + 1,
    active: true,
    internal: false,
  }));
}

/** An element as the catalog shows it. */
export function presentElement(def: ElementDefinition) {
  return { ...elementSummary(def), configuration: elementConfiguration(def) };
}

/**
 * `GET /elements/{keyOrId}/metadata`: what a client needs to use the element — its
 * configuration, the hub's objects with their fields, and which platform features it has.
 */
export function elementMetadata(def: ElementDefinition) {
  const objects = hubObjects(def.hub) ?? [];
  return {
    id: def.id,
    key: def.key,
    name: def.name,
    hub: def.hub,
    authentication: { type: profileOf(def).authenticationType },
    configuration: elementConfiguration(def),
    objects: Object.fromEntries(objects.map((o) => [o.name, { description: o.description, fields: o.fields }])),
    events: { supported: true, methods: ['webhook'], description: 'Asynchronous requests notify their callback URL' },
    bulk: { supported: false },
    transformationsEnabled: false,
  };
}
