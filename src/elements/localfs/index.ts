/**
 * The `localfs` element's catalog entry: a folder on the Ferry host, confined under the
 * operator's FERRY_LOCALFS_BASE. The backend itself is `localfs.ts`.
 */
import { COMMON_CONFIG_KEYS, type ElementDefinition } from '../element.js';
import { rootSegments } from './confine.js';
import { LocalFsElement } from './localfs.js';

/** Local Filesystem: element id 1, key `localfs`. */
export const localfs: ElementDefinition = {
  id: 1,
  key: 'localfs',
  name: 'Local Filesystem',
  hub: 'documents',
  description: 'A folder on the Ferry host, below the operator\'s FERRY_LOCALFS_BASE.',
  configuration: [
    {
      key: 'root',
      name: 'Root folder',
      required: true,
      secret: false,
      description:
        'Folder relative to FERRY_LOCALFS_BASE (no "..", not absolute); created on first use. Symbolic links inside it are not followed.',
    },
    ...COMMON_CONFIG_KEYS,
  ],
  create(configuration, context) {
    return new LocalFsElement(context.localfsBase, rootSegments(configuration.root));
  },
};
