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

export const HUBS = [{ key: 'documents', name: 'Documents', description: 'Files and folders in cloud and on-premise storage' }];
