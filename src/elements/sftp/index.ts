/**
 * The `sftp` element's catalog entry and factory. The factory only validates (no network, as
 * ElementDefinition requires); the first operation — normally the caller's ping — connects.
 *
 * Module map: settings.ts (configuration keys and parsing), keys.ts (private-key checks),
 * connection.ts (one SSH connection, request timeouts), pool.ts (connections per element),
 * confine.ts (home directory and symbolic links), tree.ts (listing, walking, deleting),
 * streams.ts + transfer.ts (streamed reads and writes, temp-then-rename), sftp.ts (Element).
 */
import { COMMON_CONFIG_KEYS, type ElementDefinition } from '../element.js';
import { SFTP_CONFIG_KEYS, parseSftpSettings } from './settings.js';
import { SftpElement } from './sftp.js';

export const sftp: ElementDefinition = {
  id: 3,
  key: 'sftp',
  name: 'SFTP',
  hub: 'documents',
  description: 'Files and folders on an SFTP server (OpenSSH or compatible), confined under a home directory.',
  configuration: [...SFTP_CONFIG_KEYS, ...COMMON_CONFIG_KEYS],
  create(configuration, context) {
    return new SftpElement(parseSftpSettings(configuration), context);
  },
};
