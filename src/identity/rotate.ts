/**
 * Master key rotation: every encrypted configuration value (and every previous signature key
 * kept for a key rotation) is re-encrypted under a new key.
 * Crash-safe: the key file first lists the new key followed by the old one (so values under
 * either decrypt), then every instance is rewritten, and only then is the old key dropped. A
 * rotation that stops half-way is finished by running it again.
 *
 * With FERRY_MASTER_KEY set in the environment the key file is not used: the command prints
 * the new key, and the operator sets it (keeping the old one until the rotation has finished
 * is not possible through one variable, so nodes must be stopped during such a rotation).
 */
import fs from 'node:fs';
import type { Store } from '../store/store.js';
import { isSealed, keyFile, MasterKey } from './crypto.js';

export interface RotationResult {
  instances: number;
  values: number;
  newKey: string;
}

export async function rotateMasterKey(
  store: Store,
  dataDir: string,
  current: MasterKey,
  next: MasterKey = MasterKey.generate(),
  options: { writeKeyFile: boolean } = { writeKeyFile: true },
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
  if (options.writeKeyFile) writeKeys([next.toBase64()]);
  return { instances, values, newKey: next.toBase64() };
}
