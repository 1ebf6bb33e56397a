/**
 * Instances: connected accounts of an element. This service validates configurations against
 * the element's declared keys, encrypts secret values before they reach the store, checks that
 * the backend answers before an instance is created or reconfigured, keeps one live `Element`
 * per instance (connection pools live there), and shapes the platform's JSON.
 *
 * Secret configuration values are write-only: reads show "********", and "********" sent back in
 * a PUT/PATCH means "keep the stored value", so clients can round-trip what they read.
 */
import { COMMON_CONFIG_KEYS, type ConfigKey, type Element, type ElementDefinition } from '../elements/element.js';
import { ELEMENTS, findElementByKeyOrId } from '../elements/catalog.js';
import { FerryError, invalid, notFound } from '../errors.js';
import type { MasterKey } from '../identity/crypto.js';
import { isSealed } from '../identity/crypto.js';
import { hashSecret, newSecret } from '../identity/secrets.js';
import type { Instance, RetiredSignatureKey, Store, User } from '../store/store.js';
import { SIGNATURE_KEY, announceKeyChange, rotateKeys, type SigningKeys } from './signature-keys.js';
import type { Config } from '../config.js';
import dns from 'node:dns/promises';
import net from 'node:net';
import type { EgressPolicy } from '../async/egress.js';
import { checkCallbackUrl } from '../async/accept.js';
import { CHANGE_CONFIG_KEYS, configurationValue, parseChangeSettings } from '../changes/settings.js';

export const MASK = '********';

export interface InstanceInput {
  elementKey: string;
  name: string;
  tags: string[];
  configuration: Record<string, unknown>;
}

/** Every key an element accepts: its own, then the common event keys, then change polling's. */
export function configKeys(def: ElementDefinition): ConfigKey[] {
  const common = [...COMMON_CONFIG_KEYS, ...CHANGE_CONFIG_KEYS];
  const own = def.configuration.filter((k) => !common.some((c) => c.key === k.key));
  return [...own, ...common];
}

export class InstanceService {
  private readonly live = new Map<number, { version: number; element: Element }>();
  /**
   * Unsealed configurations by instance id, each with the sealed values it was decrypted from.
   * An entry serves only an instance whose sealed values are exactly those (the same object, or
   * the same strings): every seal uses a fresh IV, so any change of configuration — on this node
   * or another — changes the ciphertext and misses. Staleness is therefore never the cache's: a
   * caller sees a change as soon as the instance row it holds shows it (the accept's row comes
   * from the authenticator's memo, AUTH_CACHE_MS). Entries are also dropped on every change
   * made through this node, to free them.
   */
  private readonly unsealed = new Map<number, { sealed: Record<string, string>; clear: Readonly<Record<string, string>> }>();
  /** Called after any instance is updated, disabled, enabled or deleted (auth caches listen). */
  onChange: () => void = () => {};
  /**
   * Awaited after an instance is created or its configuration stored, and after one is deleted
   * (with null): change polling keeps its schedule in step (changes/schedules.ts).
   */
  onStored: (instance: Instance | null, id: number) => Promise<void> = async () => {};
  /** Where elements' warnings go (ElementContext.warn); the server logs them. */
  onWarning: (details: Record<string, unknown>, message: string) => void = () => {};

  constructor(
    private readonly store: Store,
    private readonly masterKey: MasterKey,
    private readonly config: Config,
    private readonly egress: EgressPolicy,
  ) {}

  /** The element named by its key or its numeric id. */
  definition(key: string): ElementDefinition {
    const def = findElementByKeyOrId(key);
    if (!def) {
      throw notFound(`No element "${key}"; available elements: ${ELEMENTS.map((e) => e.key).join(', ')}`);
    }
    return def;
  }

  /** Validates, pings the backend, and stores a new instance. Returns it with its token (shown once). */
  async create(user: User, input: InstanceInput): Promise<{ instance: Instance; token: string }> {
    const def = this.definition(input.elementKey);
    const clear = this.validate(def, input.configuration, {});
    await this.check(def, clear);
    const token = newSecret();
    const instance = await this.store.createInstance({
      organizationId: user.organizationId,
      userId: user.id,
      elementKey: def.key,
      name: input.name,
      tags: input.tags,
      configuration: this.seal(def, clear),
      tokenHash: hashSecret(token),
    });
    await this.onStored(instance, instance.id);
    return { instance, token };
  }

  async get(organizationId: number, id: number): Promise<Instance> {
    const instance = await this.store.getInstance(organizationId, id);
    if (!instance) throw notFound(`No instance ${id} in your organization`);
    return instance;
  }

  /**
   * Updates name, tags and/or configuration. `replace` (PUT) validates the given configuration
   * as the whole; otherwise (PATCH) it is merged over the stored one. A changed configuration
   * is checked against the backend before it is stored.
   */
  async update(
    organizationId: number,
    id: number,
    patch: { name?: string; tags?: string[]; configuration?: Record<string, unknown> },
    replace: boolean,
  ): Promise<Instance> {
    const current = await this.get(organizationId, id);
    const def = this.definition(current.elementKey);
    let configuration: Record<string, string> | undefined;
    let retiredSignatureKeys: RetiredSignatureKey[] | undefined;
    if (patch.configuration !== undefined) {
      const stored = this.unseal(current);
      const merged = replace ? patch.configuration : { ...stored, ...patch.configuration };
      const clear = this.validate(def, merged, stored);
      await this.check(def, clear);
      configuration = this.seal(def, clear);
      // A new signature key keeps the previous one valid for the overlap (signature-keys.ts).
      retiredSignatureKeys = rotateKeys(
        stored[SIGNATURE_KEY],
        clear[SIGNATURE_KEY],
        current.retiredSignatureKeys,
        new Date(),
        this.config.keyRotationOverlapMs,
        { seal: (k) => this.masterKey.encrypt(k), open: (k) => this.masterKey.decrypt(k) },
      );
    }
    const updated = await this.store.updateInstance(organizationId, id, {
      name: patch.name,
      tags: patch.tags,
      configuration,
      retiredSignatureKeys,
    });
    if (!updated) throw notFound(`No instance ${id} in your organization`);
    if (retiredSignatureKeys !== undefined) announceKeyChange(id);
    this.unsealed.delete(id);
    this.onChange();
    await this.forget(id);
    if (configuration) await this.onStored(updated, id);
    return updated;
  }

  async setDisabled(organizationId: number, id: number, disabled: boolean): Promise<Instance> {
    const updated = await this.store.updateInstance(organizationId, id, { disabled });
    if (!updated) throw notFound(`No instance ${id} in your organization`);
    this.unsealed.delete(id);
    this.onChange();
    return updated;
  }

  async remove(organizationId: number, id: number): Promise<void> {
    if (!(await this.store.deleteInstance(organizationId, id))) throw notFound(`No instance ${id} in your organization`);
    this.unsealed.delete(id);
    this.onChange();
    await this.forget(id);
    await this.onStored(null, id);
  }

  /**
   * Keys for another purpose (bulk results at rest), derived from the master key: the first
   * seals; all of them open (the later ones come from the previous keys of a rotation still
   * under way).
   */
  derivedKeys(label: string): Buffer[] {
    return this.masterKey.deriveAll(label);
  }

  /** The live backend of an instance, created on first use and rebuilt after a change. */
  element(instance: Instance): Element {
    const version = instance.updatedDate.getTime();
    const cached = this.live.get(instance.id);
    if (cached && cached.version === version) return cached.element;
    if (cached) void cached.element.close().catch(() => {});
    const element = this.definition(instance.elementKey).create(this.unseal(instance), {
      ...this.context(),
      learned: (values) => void this.recordLearned(instance, values),
      warn: (details, message) => this.onWarning({ instanceId: instance.id, ...details }, message),
    });
    this.live.set(instance.id, { version, element });
    return element;
  }

  /**
   * Stores what a live element learned (an SFTP host key trusted on first use) with its
   * instance, for instances that had not learned it when they were checked. Best effort: a
   * failure is retried at the element's next first connection.
   */
  private async recordLearned(instance: Instance, values: Record<string, string>): Promise<void> {
    try {
      const current = await this.store.getInstance(instance.organizationId, instance.id);
      if (!current) return;
      const stored = this.unseal(current);
      // Never over a value already there (a pin set meanwhile wins).
      if (Object.keys(values).every((k) => (stored[k] ?? '') !== '')) return;
      const def = this.definition(current.elementKey);
      const merged = { ...stored };
      for (const [k, v] of Object.entries(values)) if ((merged[k] ?? '') === '') merged[k] = v;
      await this.store.updateInstance(instance.organizationId, instance.id, { configuration: this.seal(def, merged) });
      this.onChange();
    } catch {
      // Not stored now; learned again after the next restart.
    }
  }

  /**
   * Clear configuration values of an instance (secrets decrypted), for the backend and webhooks.
   * Read-only: the object is shared by every caller until the configuration changes (each
   * accept reads its callback URL here, so decrypting every time cost an AES-GCM per secret).
   */
  unseal(instance: Instance): Readonly<Record<string, string>> {
    const sealed = instance.configuration;
    const hit = this.unsealed.get(instance.id);
    if (hit && (hit.sealed === sealed || sameValues(hit.sealed, sealed))) return hit.clear;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(sealed)) out[k] = isSealed(v) ? this.masterKey.decrypt(v) : v;
    const clear = Object.freeze(out);
    if (this.unsealed.size >= 10_000) this.unsealed.clear();
    this.unsealed.set(instance.id, { sealed, clear });
    return clear;
  }

  /** The keys an instance's webhooks are signed with, decrypted (current first). */
  signingKeys(instance: Instance): SigningKeys {
    const current = this.unseal(instance)[SIGNATURE_KEY] || undefined;
    const retired = instance.retiredSignatureKeys.map((k) => ({ key: this.masterKey.decrypt(k.key), until: k.until.getTime() }));
    return { current, retired };
  }

  /** Configuration as clients see it: secrets masked. */
  masked(instance: Instance): Record<string, string> {
    const def = this.definition(instance.elementKey);
    const secret = new Set(configKeys(def).filter((k) => k.secret).map((k) => k.key));
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(instance.configuration)) out[k] = secret.has(k) ? MASK : v;
    return out;
  }

  async closeAll(): Promise<void> {
    const all = [...this.live.values()];
    this.live.clear();
    await Promise.allSettled(all.map((l) => l.element.close()));
  }

  private async forget(id: number): Promise<void> {
    const cached = this.live.get(id);
    this.live.delete(id);
    if (cached) await cached.element.close().catch(() => {});
  }

  private context() {
    return { localfsBase: this.config.localfsBase, backendTimeoutMs: this.config.backendTimeoutMs, egress: this.egress };
  }

  /**
   * Checks keys and values; returns the clear configuration with defaults applied. A masked
   * value keeps the stored one.
   */
  private validate(
    def: ElementDefinition,
    given: Record<string, unknown>,
    stored: Record<string, string>,
  ): Record<string, string> {
    const keys = configKeys(def);
    const known = new Map(keys.map((k) => [k.key, k]));
    const unknown = Object.keys(given).filter((k) => !known.has(k));
    if (unknown.length > 0) {
      throw invalid(
        `Unknown configuration key(s) for element ${def.key}: ${unknown.join(', ')}. Known keys: ${keys.map((k) => k.key).join(', ')}`,
      );
    }
    const out: Record<string, string> = {};
    for (const k of keys) {
      let value = configurationValue(k.key, given[k.key]);
      if (value === MASK && stored[k.key] !== undefined) value = stored[k.key];
      if (value === undefined || value === null || value === '') {
        if (k.default !== undefined) out[k.key] = k.default;
        continue;
      }
      if (typeof value === 'boolean' || typeof value === 'number') value = String(value);
      if (typeof value !== 'string') throw invalid(`Configuration key ${k.key} must be a string`);
      if (value.length > 16384) throw invalid(`Configuration key ${k.key} is longer than 16384 characters`);
      out[k.key] = value;
    }
    const missing = keys.filter((k) => k.required && out[k.key] === undefined).map((k) => k.key);
    if (missing.length > 0) throw invalid(`Missing required configuration key(s) for element ${def.key}: ${missing.join(', ')}`);
    const enabled = out['event.notification.enabled'];
    if (enabled !== undefined && enabled !== 'true' && enabled !== 'false') {
      throw invalid('Configuration key event.notification.enabled must be "true" or "false"');
    }
    const events = parseChangeSettings(out, this.config.pollerMinIntervalMs, this.config.maxPathLength);
    // Change events go to this URL without a request to check it at: check it now.
    if (events.enabled && events.callbackUrl) checkCallbackUrl(this.egress, events.callbackUrl);
    return out;
  }

  /** Builds a throwaway element and pings it: the backend must answer before we store anything. */
  private async check(def: ElementDefinition, clear: Record<string, string>): Promise<void> {
    for (const k of configKeys(def)) {
      if (k.egress && clear[k.key]) await this.checkEgress(k.key, k.egress, clear[k.key]);
    }
    // What the backend teaches the element while it is checked (an SFTP host key seen for the
    // first time) is stored with the configuration.
    const element = def.create(clear, { ...this.context(), learned: (values) => Object.assign(clear, values) });
    try {
      await element.ping();
    } catch (e) {
      if (e instanceof FerryError && (e.kind === 'unauthenticated' || e.kind === 'invalid')) throw e;
      const message = e instanceof FerryError ? e.message : 'the backend did not answer';
      const providerMessage = e instanceof FerryError ? (e.providerMessage ?? e.message) : String((e as Error)?.message ?? e);
      throw invalid(`The ${def.key} backend did not answer with this configuration (${message}); check the configuration`, {
        providerMessage,
      });
    } finally {
      await element.close().catch(() => {});
    }
  }

  /**
   * A backend address from a configuration must pass the egress policy like a callback URL:
   * every address the name resolves to now is checked, so an instance cannot be pointed at the
   * host's loopback, a private network or a metadata service unless FERRY_EGRESS_ALLOW says so.
   */
  private async checkEgress(key: string, kind: 'url' | 'host', value: string): Promise<void> {
    let host = value;
    if (kind === 'url') {
      try {
        host = this.egress.checkUrl(value).hostname;
      } catch (e) {
        if (e instanceof FerryError) throw invalid(`Configuration key ${key}: ${e.message}`);
        throw e;
      }
    }
    host = host.replace(/^\[(.*)\]$/, '$1');
    let addresses: string[];
    try {
      addresses = net.isIP(host) ? [host] : (await dns.lookup(host, { all: true })).map((a) => a.address);
    } catch {
      throw invalid(`Configuration key ${key}: the host ${host} does not resolve`);
    }
    for (const address of addresses) {
      const why = this.egress.explain(address, host);
      if (why) {
        throw invalid(
          `Configuration key ${key}: ${host} resolves to ${address} (${why}), which Ferry does not connect to; allow it with FERRY_EGRESS_ALLOW`,
        );
      }
    }
  }

  private seal(def: ElementDefinition, clear: Record<string, string>): Record<string, string> {
    const secret = new Set(configKeys(def).filter((k) => k.secret).map((k) => k.key));
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(clear)) out[k] = secret.has(k) ? this.masterKey.encrypt(v) : v;
    return out;
  }
}

/** Whether two configurations hold the same keys with the same (sealed or plain) values. */
function sameValues(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}
