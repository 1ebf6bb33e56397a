/**
 * The element catalog: every connector Ferry offers, by key. Adding an element means adding
 * its definition here and nothing else.
 */
import type { ElementDefinition } from './element.js';
import { localfs } from './localfs/index.js';
import { amazons3 } from './amazons3/index.js';
import { sftp } from './sftp/index.js';

export const ELEMENTS: readonly ElementDefinition[] = [localfs, amazons3, sftp];

const byKey = new Map(ELEMENTS.map((e) => [e.key, e]));

export function findElement(key: string): ElementDefinition | undefined {
  return byKey.get(key);
}

/**
 * An element by key or by numeric id: the platform accepts either in every `/elements/{keyOrId}`
 * route (instances carry `element.id`, and clients reuse it).
 */
export function findElementByKeyOrId(keyOrId: string): ElementDefinition | undefined {
  const byItsKey = byKey.get(keyOrId);
  if (byItsKey) return byItsKey;
  if (!/^\d{1,9}$/.test(keyOrId)) return undefined;
  return ELEMENTS.find((e) => e.id === Number(keyOrId));
}

export const HUBS = [{ id: 1, key: 'documents', name: 'Documents', description: 'Files and folders in cloud and on-premise storage' }];
