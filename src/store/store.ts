/**
 * The store: one interface for everything Ferry keeps durably. Two implementations sit beside
 * this file — `sqlite/` (embedded default) and `postgres/` (several nodes on one database) — and
 * `index.ts` chooses between them. The conformance suite in test/store/ runs against both.
 *
 * Glossary
 * - organization: the tenant boundary. Users and instances belong to exactly one; nothing
 *   crosses it. Every read of an instance, event or setting takes the organization id.
 * - instance: one connected account of an element (a localfs folder, an S3 bucket, an SFTP
 *   login), with its configuration (secret values already encrypted by the caller) and a token
 *   (stored as its SHA-256 hash only).
 * - tags: labels Ferry keeps per (instance, document path) for every element.
 *
 * Secrets never reach the store in clear: the caller hashes tokens and encrypts backend
 * credentials before handing them over.
 */
import type { AsyncStore } from './async.js';

export interface Organization {
  id: number;
  name: string;
  createdDate: Date;
}

export interface User {
  id: number;
  organizationId: number;
  emailAddress: string;
  firstName: string;
  lastName: string;
  createdDate: Date;
}

export interface Instance {
  id: number;
  organizationId: number;
  userId: number;
  elementKey: string;
  name: string;
  tags: string[];
  /** Configuration values; values of secret keys are ciphertexts (identity/crypto.ts). */
  configuration: Record<string, string>;
  /**
   * Signature keys replaced by a newer `event.notification.signature.key` that webhooks still
   * carry until `until` (key rotation, issue 24), newest first; `key` is a ciphertext.
   */
  retiredSignatureKeys: RetiredSignatureKey[];
  disabled: boolean;
  valid: boolean;
  createdDate: Date;
  updatedDate: Date;
}

/** A previous signature key, still sent beside the current one until `until`. */
export interface RetiredSignatureKey {
  /** The key, encrypted with the master key like every secret configuration value. */
  key: string;
  until: Date;
}

export interface NewInstance {
  organizationId: number;
  userId: number;
  elementKey: string;
  name: string;
  tags: string[];
  configuration: Record<string, string>;
  tokenHash: string;
}

export type InstancePatch = Partial<Pick<Instance, 'name' | 'tags' | 'configuration' | 'retiredSignatureKeys' | 'disabled' | 'valid'>>;

export interface IdentityStore {
  countOrganizations(): Promise<number>;
  createOrganization(input: { name: string; secretHash: string }): Promise<Organization>;
  createUser(input: {
    organizationId: number;
    emailAddress: string;
    firstName: string;
    lastName: string;
    secretHash: string;
  }): Promise<User>;
  findOrganizationBySecretHash(secretHash: string): Promise<Organization | null>;
  findUserBySecretHash(secretHash: string): Promise<User | null>;
  getUser(id: number): Promise<User | null>;
  getOrganizationByName(name: string): Promise<Organization | null>;
  /** Replaces an organization's or user's secret hash (CLI rotation). */
  setSecretHash(kind: 'organization' | 'user', id: number, secretHash: string): Promise<boolean>;
}

export interface InstanceStore {
  createInstance(input: NewInstance): Promise<Instance>;
  getInstance(organizationId: number, id: number): Promise<Instance | null>;
  findInstanceByTokenHash(tokenHash: string): Promise<Instance | null>;
  /** Instances of an organization, oldest first; `tags` keeps those carrying all of them. */
  listInstances(organizationId: number, filter?: { elementKey?: string; tags?: string[] }): Promise<Instance[]>;
  updateInstance(organizationId: number, id: number, patch: InstancePatch): Promise<Instance | null>;
  deleteInstance(organizationId: number, id: number): Promise<boolean>;
  /** Every instance of every organization (master key rotation). */
  allInstances(): Promise<Instance[]>;
}

/** Tags per (instance, document path); folder operations carry their descendants' tags. */
export interface TagStore {
  /** Tags of the given paths (paths without tags are absent from the map). */
  getTags(instanceId: number, paths: string[]): Promise<Map<string, string[]>>;
  /** Replaces the tags of one path; an empty list removes them. */
  setTags(instanceId: number, path: string, tags: string[]): Promise<void>;
  /** Moves the tags of `from` and everything under it to `to`. */
  moveTags(instanceId: number, from: string, to: string): Promise<void>;
  /** Copies the tags of `from` and everything under it to `to` (replacing tags there). */
  copyTags(instanceId: number, from: string, to: string): Promise<void>;
  /** Forgets the tags of `path` and everything under it. */
  deleteTags(instanceId: number, path: string): Promise<void>;
}

/**
 * The per-event journal of documents-hub jobs (issue 25): before a job's first write the
 * documents service records what it is about to create, change or delete, keyed by the event,
 * so a re-run after a crash recognises that work as its own. Rows live while the event's job
 * does; `purgeExpired` forgets those of finished jobs.
 */
export interface JobJournalStore {
  /** The value the event's job journaled under `key`, or null. */
  journalGet(eventId: number, key: string): Promise<string | null>;
  /** Records (or replaces) the event's entry under `key`; durable when it resolves. */
  journalPut(eventId: number, key: string, value: string): Promise<void>;
}

export interface SettingsStore {
  getSettings(organizationId: number): Promise<Record<string, string>>;
  setSettings(organizationId: number, settings: Record<string, string>): Promise<void>;
}

/** What differs between backends, as data (STYLE §3). */
export interface StoreCapabilities {
  name: 'sqlite' | 'postgres';
  /** Several processes may share this store (PostgreSQL). */
  shared: boolean;
  /** `acceptEvents` can lease new jobs to a handoff (see Handoff); notifications always can. */
  handsOffJobs: boolean;
}

export interface Store extends IdentityStore, InstanceStore, TagStore, SettingsStore, AsyncStore, JobJournalStore {
  readonly capabilities: StoreCapabilities;
  /** Applies pending migrations; safe to call from several nodes at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

/** The range of paths strictly under `folder` is [folder + "/", folder + "0"): "0" follows "/". */
export function descendantRange(folder: string): [string, string] {
  if (folder === '/') return ['/', '0'];
  return [folder + '/', folder + '0'];
}
