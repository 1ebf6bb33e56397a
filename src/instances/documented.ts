/**
 * Fields of the platform's instance object that Ferry has no feature behind, with the values
 * that say so, and the documented `configuration` keys a client may expect to find (null when
 * unset): strict clients deserialise an instance without failing on a missing field.
 */

/** Instance fields of the platform that describe features Ferry does not have (caching, tracing). */
export const INSTANCE_DEFAULTS = {
  provisionInteractions: [] as unknown[],
  maxCacheSize: 0,
  cacheTimeToLive: 0,
  cachingEnabled: false,
  traceLoggingEnabled: false,
  externalAuthentication: 'none',
} as const;

/** Every `event.*` configuration key the platform's instance pages show. */
export const DOCUMENTED_EVENT_KEYS = [
  'event.notification.enabled',
  'event.notification.callback.url',
  'event.notification.signature.key',
  'event.notification.subscription.id',
  'event.notification.type',
  'event.vendor.type',
  'event.poller.refresh_interval',
  'event.poller.configuration',
] as const;

/** The configuration with every element key and every documented event key present (null when unset). */
export function withDocumentedKeys(configuration: Record<string, string>, elementKeys: string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const key of [...elementKeys, ...DOCUMENTED_EVENT_KEYS]) out[key] = null;
  return Object.assign(out, configuration);
}

/**
 * A configuration a client sends back as it read it: documented keys the element does not have
 * arrive as null (or ""), and mean "unset"; they are dropped before validation, so a read →
 * write round trip works. A value in such a key is still refused as unknown.
 */
export function withoutUnsetDocumentedKeys(
  configuration: Record<string, unknown> | undefined,
  elementKeys: string[],
): Record<string, unknown> | undefined {
  if (!configuration) return configuration;
  const own = new Set(elementKeys);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(configuration)) {
    const documented = (DOCUMENTED_EVENT_KEYS as readonly string[]).includes(key);
    if (documented && !own.has(key) && (value === null || value === '')) continue;
    out[key] = value;
  }
  return out;
}
