/**
 * Change polling's instance configuration: the keys Open Connectors uses for polling events
 * (`event.vendor.type`, `event.poller.refresh_interval`, `event.poller.configuration`), their
 * validation (a 400 naming the key), and the parsed watch the poller runs from.
 *
 * Owns: the key list and its rules. May import: elements/element.ts (ConfigKey),
 * documents/paths.ts (path normalisation), errors.ts. Nothing here touches the store or a
 * backend; instances/service.ts calls it while validating a configuration.
 *
 * Choices: the interval is in minutes (as on the platform; decimals allowed, default 15) and is
 * raised to FERRY_POLLER_MIN_INTERVAL seconds when smaller; `event.vendor.type` may only be
 * `polling` (Ferry has no vendor webhooks to subscribe to); the watched path is normalised like
 * any hub path, so `..` or a control character is refused, and it must be an absolute path
 * inside the instance's root; `recursive` defaults to true.
 */
import type { ConfigKey } from '../elements/element.js';
import { normalisePath } from '../documents/paths.js';
import { FerryError, invalid } from '../errors.js';

export const ENABLED_KEY = 'event.notification.enabled';
export const CALLBACK_KEY = 'event.notification.callback.url';
export const VENDOR_TYPE_KEY = 'event.vendor.type';
export const INTERVAL_KEY = 'event.poller.refresh_interval';
export const POLLER_CONFIGURATION_KEY = 'event.poller.configuration';

/** Minutes between polls when `event.poller.refresh_interval` is absent (the platform's default). */
export const DEFAULT_INTERVAL_MINUTES = 15;

/**
 * The configuration keys of change polling, shown in the catalog after the common event keys.
 * No `default` values: they would be written into every instance's configuration; the
 * defaults are applied by `parseChangeSettings` instead (and named in the descriptions).
 */
export const CHANGE_CONFIG_KEYS: ConfigKey[] = [
  {
    key: VENDOR_TYPE_KEY,
    name: 'Event type',
    required: false,
    secret: false,
    description: 'How changes are detected: "polling" (the default and only type: Ferry rescans the storage).',
  },
  {
    key: INTERVAL_KEY,
    name: 'Polling interval (minutes)',
    required: false,
    secret: false,
    description: 'Minutes between two polls (default 15); decimals allowed; never below FERRY_POLLER_MIN_INTERVAL seconds.',
  },
  {
    key: POLLER_CONFIGURATION_KEY,
    name: 'Polling configuration',
    required: false,
    secret: false,
    description: 'JSON {"path": "/inbox", "recursive": true}: the folder watched (default the whole root).',
  },
];

/** What support the catalog shows under `events` for every element. */
export const EVENTS_SUPPORT = { supported: true, methods: ['polling'] } as const;

/** What the poller watches on one instance. */
export interface Watch {
  path: string;
  recursive: boolean;
}

export interface ChangeSettings {
  enabled: boolean;
  callbackUrl: string | undefined;
  intervalMs: number;
  watch: Watch;
}

/**
 * A JSON object given for `event.poller.configuration` becomes its JSON text (configuration
 * values are strings); every other value is returned as is.
 */
export function configurationValue(key: string, value: unknown): unknown {
  if (key === POLLER_CONFIGURATION_KEY && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return JSON.stringify(value);
  }
  return value;
}

/**
 * Checks the change keys of a clear configuration (defaults applied) and returns what they
 * mean; throws `invalid` naming the key. `minIntervalMs` is FERRY_POLLER_MIN_INTERVAL.
 */
export function parseChangeSettings(configuration: Record<string, string>, minIntervalMs: number, maxPathLength = 4096): ChangeSettings {
  const enabled = configuration[ENABLED_KEY] === 'true';
  const callbackUrl = configuration[CALLBACK_KEY] || undefined;
  if (enabled && !callbackUrl) {
    throw invalid(`Configuration key ${CALLBACK_KEY} is required when ${ENABLED_KEY} is true: set the URL Ferry should POST change events to`);
  }
  const vendor = configuration[VENDOR_TYPE_KEY] ?? 'polling';
  if (vendor !== 'polling') {
    throw invalid(`Configuration key ${VENDOR_TYPE_KEY} must be "polling" (the only event type Ferry supports), got "${vendor.slice(0, 40)}"`);
  }
  const rawInterval = configuration[INTERVAL_KEY] ?? String(DEFAULT_INTERVAL_MINUTES);
  const minutes = /^\s*\d+(\.\d+)?\s*$|^\s*\.\d+\s*$/.test(rawInterval) ? Number(rawInterval) : NaN;
  if (!Number.isFinite(minutes) || minutes <= 0) {
    throw invalid(`Configuration key ${INTERVAL_KEY} must be a positive number of minutes (decimals allowed, e.g. "0.5"), got "${rawInterval.slice(0, 40)}"`);
  }
  const intervalMs = Math.max(minIntervalMs, Math.round(minutes * 60_000));
  return { enabled, callbackUrl, intervalMs, watch: parseWatch(configuration[POLLER_CONFIGURATION_KEY], maxPathLength) };
}

function parseWatch(raw: string | undefined, maxPathLength: number): Watch {
  if (raw === undefined || raw.trim() === '') return { path: '/', recursive: true };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalid(`Configuration key ${POLLER_CONFIGURATION_KEY} must be a JSON object such as {"path": "/inbox", "recursive": true}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`Configuration key ${POLLER_CONFIGURATION_KEY} must be a JSON object such as {"path": "/inbox", "recursive": true}`);
  }
  const object = value as Record<string, unknown>;
  const unknown = Object.keys(object).filter((k) => k !== 'path' && k !== 'recursive');
  if (unknown.length > 0) {
    throw invalid(`Configuration key ${POLLER_CONFIGURATION_KEY} has unknown key(s) ${unknown.join(', ')}; it takes only "path" and "recursive"`);
  }
  const recursive = object.recursive ?? true;
  if (typeof recursive !== 'boolean') throw invalid(`Configuration key ${POLLER_CONFIGURATION_KEY}: "recursive" must be true or false`);
  const rawPath = object.path ?? '/';
  if (typeof rawPath !== 'string' || !rawPath.startsWith('/')) {
    throw invalid(`Configuration key ${POLLER_CONFIGURATION_KEY}: "path" must be an absolute path inside the instance's root, such as "/inbox"`);
  }
  try {
    return { path: normalisePath(rawPath, maxPathLength), recursive };
  } catch (e) {
    if (e instanceof FerryError) throw invalid(`Configuration key ${POLLER_CONFIGURATION_KEY}: ${e.message}`);
    throw e;
  }
}

/** The stored form of a watch: a different one starts a new baseline. */
export function watchKey(watch: Watch): string {
  return JSON.stringify({ path: watch.path, recursive: watch.recursive });
}
