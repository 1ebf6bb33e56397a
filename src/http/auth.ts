/**
 * Authentication at the HTTP edge. Platform routes need User + Organization; hub routes need
 * User + Element (Organization optional, and it must match when present). Secrets are looked
 * up by their SHA-256 hash, so a lookup reveals nothing about a stored secret.
 *
 * The async runner replays captured requests in-process without any secret: it presents the
 * job's resolved identity through the `x-ferry-internal` header, sealed with a random token
 * that lives only in this process's memory. The header is removed from every request before
 * anything reads it, and honoured only with the right token, so no outside request can use it.
 */
import crypto from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { forbidden, unauthenticated } from '../errors.js';
import { parseAuthorization } from '../identity/authorization.js';
import { hashSecret, safeEqual } from '../identity/secrets.js';
import type { Instance, Organization, Store, User } from '../store/store.js';

export interface Identity {
  organizationId: number;
  user: User;
  instance?: Instance;
}

/** What a replayed job asserts about its caller. */
export interface InternalIdentity {
  organizationId: number;
  userId: number;
  instanceId: number;
  jobId: number;
}

export const INTERNAL_HEADER = 'x-ferry-internal';

/**
 * How long a successful lookup of a secret is reused. Changes made through this node (instance
 * update, disable, delete) take effect at once; changes made by another node of a cluster within
 * this time.
 */
export const AUTH_CACHE_MS = 1000;

/**
 * A small time-bounded memo of successful lookups (misses are never cached). Concurrent misses
 * of one key share one load: when an entry expires under load, the requests that arrive before
 * the store answers would otherwise each query it (on PostgreSQL that herd doubled the identity
 * lookups per event). A load started before `clear()` is neither stored nor shared after it.
 */
class Memo<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  private readonly loading = new Map<string, Promise<T | null>>();
  private generation = 0;

  async get(key: string, load: () => Promise<T | null>): Promise<T | null> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) return hit.value;
    const pending = this.loading.get(key);
    if (pending) return pending;
    const generation = this.generation;
    const loaded = load().then(
      (value) => {
        if (this.generation !== generation) return value;
        this.loading.delete(key);
        if (value !== null) {
          if (this.entries.size > 50_000) this.entries.clear();
          this.entries.set(key, { value, until: now + AUTH_CACHE_MS });
        }
        return value;
      },
      (e) => {
        if (this.generation === generation) this.loading.delete(key);
        throw e;
      },
    );
    this.loading.set(key, loaded);
    return loaded;
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.loading.clear();
  }
}

export class Authenticator {
  private readonly internalToken = crypto.randomBytes(32).toString('hex');
  private readonly users = new Memo<User>();
  private readonly organizations = new Memo<Organization>();
  private readonly instances = new Memo<Instance>();

  constructor(private readonly store: Store) {}

  /** Forgets cached instances (after any instance change on this node). */
  forgetInstances(): void {
    this.instances.clear();
  }

  /** The header value the runner sends for a job. */
  internalHeader(identity: InternalIdentity): string {
    return JSON.stringify({ token: this.internalToken, ...identity });
  }

  /** Removes and verifies the internal header; null when absent or forged. */
  takeInternal(request: FastifyRequest): InternalIdentity | null {
    const raw = request.headers[INTERNAL_HEADER];
    if (raw === undefined) return null;
    delete request.headers[INTERNAL_HEADER];
    if (typeof raw !== 'string') return null;
    try {
      const parsed = JSON.parse(raw);
      if (typeof parsed.token !== 'string' || !safeEqual(parsed.token, this.internalToken)) return null;
      return {
        organizationId: parsed.organizationId,
        userId: parsed.userId,
        instanceId: parsed.instanceId,
        jobId: parsed.jobId,
      };
    } catch {
      return null;
    }
  }

  /** User + Organization (platform routes). */
  async platform(header: string | undefined): Promise<Identity> {
    const creds = parseAuthorization(header);
    if (!creds.user || !creds.organization) {
      throw unauthenticated('This route needs Authorization: User <userSecret>, Organization <orgSecret>');
    }
    const [user, org] = await Promise.all([this.user(creds.user), this.organization(creds.organization)]);
    if (user.organizationId !== org.id) throw unauthenticated('The user secret does not belong to this organization');
    return { organizationId: org.id, user };
  }

  /** User + Element, Organization optional (hub routes). */
  async hub(header: string | undefined): Promise<Identity> {
    const creds = parseAuthorization(header);
    if (!creds.user || !creds.element) {
      throw unauthenticated('Hub routes need Authorization: User <userSecret>, Element <instanceToken>');
    }
    const user = await this.user(creds.user);
    if (creds.organization) {
      const org = await this.organization(creds.organization);
      if (org.id !== user.organizationId) throw unauthenticated('The user secret does not belong to this organization');
    }
    const tokenHash = hashSecret(creds.element);
    const instance = await this.instances.get(tokenHash, () => this.store.findInstanceByTokenHash(tokenHash));
    if (!instance || instance.organizationId !== user.organizationId) {
      throw unauthenticated('Unknown Element token (was the instance deleted?); use the token returned when the instance was created');
    }
    return this.withInstance(user, instance);
  }

  /** Resolves a replayed job's identity, re-checking that it still exists. */
  async internal(identity: InternalIdentity): Promise<Identity> {
    const user = await this.users.get(`id:${identity.userId}`, () => this.store.getUser(identity.userId));
    const instance = await this.instances.get(`id:${identity.organizationId}:${identity.instanceId}`, () =>
      this.store.getInstance(identity.organizationId, identity.instanceId),
    );
    if (!user || user.organizationId !== identity.organizationId) throw unauthenticated('The user of this job no longer exists');
    if (!instance) throw unauthenticated('The instance of this job was deleted');
    return this.withInstance(user, instance);
  }

  private withInstance(user: User, instance: Instance): Identity {
    if (instance.disabled) {
      throw forbidden(`Instance ${instance.id} is disabled; enable it with PUT /instances/${instance.id}/enabled`);
    }
    return { organizationId: user.organizationId, user, instance };
  }

  private async user(secret: string): Promise<User> {
    const hash = hashSecret(secret);
    const user = await this.users.get(hash, () => this.store.findUserBySecretHash(hash));
    if (!user) throw unauthenticated('Unknown User secret');
    return user;
  }

  private async organization(secret: string): Promise<Organization> {
    const hash = hashSecret(secret);
    const org = await this.organizations.get(hash, () => this.store.findOrganizationBySecretHash(hash));
    if (!org) throw unauthenticated('Unknown Organization secret');
    return org;
  }
}
