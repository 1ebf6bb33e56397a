/**
 * Named types over the ones generated from Ferry's OpenAPI document (generated/openapi.ts,
 * written at build time by openapi-typescript), and the helpers that tie a route's path and
 * method to its answer, so a route the document no longer has fails the client's build.
 */
import type { components, paths } from './generated/openapi.js';

export type { components, paths };

type Schemas = components['schemas'];
export type DocumentObject = Schemas['DocumentObject'];
export type Link = Schemas['Link'];
export type Storage = Schemas['Storage'];
export type Revision = Schemas['Revision'];
export type Instance = Schemas['Instance'];
export type InstanceInput = Schemas['InstanceInput'];
export type ConfigurationEntry = Schemas['ConfigurationEntry'];
export type Element = Schemas['Element'];
export type FerryEvent = Schemas['Event'];
export type Delivery = Schemas['Delivery'];
export type Settings = Schemas['Settings'];
export type AsyncAccepted = Schemas['AsyncAccepted'];
export type ErrorBody = Schemas['ErrorBody'];

export type Method = 'get' | 'put' | 'post' | 'patch' | 'delete';

/** The JSON a route answers with on success, from the document. */
export type Answer<P extends keyof paths, M extends Method> = paths[P] extends { [K in M]: { responses: { 200: { content: { 'application/json': infer T } } } } }
  ? T
  : never;

/** A page of a listing: the items, the token of the next page (null on the last), and the total when known. */
export interface Page<T> {
  items: T[];
  nextPage: string | null;
  total: number | null;
}
