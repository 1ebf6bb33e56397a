/**
 * Master key rotation: every encrypted configuration value (and every previous signature key
 * kept for a key rotation) is re-encrypted under a new key, and every bulk result still kept
 * under FERRY_BULK_DIR is re-sealed under the key derived from it (bulk/results.ts).
 * Crash-safe: the key file first lists the new key followed by the old one (so values under
 * either decrypt, and results under either key's derived key open), then every instance is
 * rewritten and every result file replaced by its re-sealed copy (written aside, then renamed
 * over it), and only then is the old key dropped. A rotation that stops half-way is finished
 * by running it again.
 *
 * With FERRY_MASTER_KEY set in the environment the key file is not used: the command prints
 * the new key, and the operator sets it (keeping the old one until the rotation has finished
 * is not possible through one variable, so nodes must be stopped during such a rotation).
 */
import fs from 'node:fs';
import type { Store } from '../store/store.js';
import { BulkResults, RESULT_KEY_LABEL } from '../bulk/results.js';
import { isSealed, keyFile, MasterKey } from './crypto.js';

export interface RotationResult {
  instances: number;
  values: number;
  /** Bulk result files re-sealed. */
  bulkFiles: number;
  newKey: string;
}

export interface RotationOptions {
  writeKeyFile: boolean;
  /** FERRY_BULK_DIR and FERRY_RESULT_RETENTION: results kept there are re-sealed, expired ones deleted. */
  bulk?: { dir: string; retentionMs: number };
}

export async function rotateMasterKey(
  store: Store,
  dataDir: string,
  current: MasterKey,
  next: MasterKey = MasterKey.generate(),
  options: RotationOptions = { writeKeyFile: true },
): Promise<RotationResult> {
  const file = keyFile(dataDir);
  const writeKeys = (lines: string[]) => {
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, lines.join('\n') + '\n', { mode: 0o600 });
    fs.renameSync(tmp, file);
  };
  if (options.writeKeyFile) writeKeys([next.toBase64(), ...current.allBase64()]);
  const both = next.withPrevious(current);
  let instances = 0;
  let values = 0;
  for (const instance of await store.allInstances()) {
    let changed = false;
    const configuration: Record<string, string> = {};
    for (const [k, v] of Object.entries(instance.configuration)) {
      if (isSealed(v)) {
        configuration[k] = next.encrypt(both.decrypt(v));
        values++;
        changed = true;
      } else {
        configuration[k] = v;
      }
    }
    // Previous signature keys still inside their rotation overlap are secrets too.
    const retiredSignatureKeys = instance.retiredSignatureKeys.map((k) => ({ key: next.encrypt(both.decrypt(k.key)), until: k.until }));
    values += retiredSignatureKeys.length;
    if (retiredSignatureKeys.length > 0) changed = true;
    if (changed) {
      await store.updateInstance(instance.organizationId, instance.id, { configuration, retiredSignatureKeys });
      instances++;
    }
  }
  let bulkFiles = 0;
  if (options.bulk) {
    const results = new BulkResults(options.bulk.dir);
    // Results past their retention are deleted now rather than re-sealed to be deleted later.
    results.sweepExpired(options.bulk.retentionMs);
    bulkFiles = await results.resealAll(both.deriveAll(RESULT_KEY_LABEL), next.derive(RESULT_KEY_LABEL));
  }
  if (options.writeKeyFile) writeKeys([next.toBase64()]);
  return { instances, values, bulkFiles, newKey: next.toBase64() };
}
