/**
 * The names of the temp files SFTP writes go through (issue 25): a file is written under such a
 * name beside its target and renamed into place once complete. Listings and searches skip them
 * (tree.ts); transfers create and clean them (transfer.ts). Imports nothing, so both may use it.
 */

/** Names Ferry gives its temp files; listings skip them. */
export const TEMP_PREFIX = '.ferry-upload-';

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) && name.endsWith('.tmp');
}
