/**
 * First start: with an empty store Ferry creates one organization and one user, prints their
 * secrets once, and writes them to <dataDir>/credentials.json (mode 0600). FERRY_USER_SECRET and
 * FERRY_ORG_SECRET preset them (containers, tests); preset secrets are not printed (only the
 * variable's name is). Later starts change nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Store } from '../store/store.js';
import { hashSecret, newSecret } from './secrets.js';

export interface BootstrapResult {
  created: boolean;
  credentialsFile: string;
}

export async function bootstrap(store: Store, config: Config, print: (line: string) => void): Promise<BootstrapResult> {
  const credentialsFile = path.join(config.dataDir, 'credentials.json');
  if ((await store.countOrganizations()) > 0) return { created: false, credentialsFile };
  const organizationSecret = config.orgSecret ?? newSecret();
  const userSecret = config.userSecret ?? newSecret();
  let org;
  try {
    org = await store.createOrganization({ name: 'default', secretHash: hashSecret(organizationSecret) });
  } catch (e) {
    // Another node of the cluster bootstrapped the shared database first (unique name).
    if ((await store.countOrganizations()) > 0) return { created: false, credentialsFile };
    throw e;
  }
  await store.createUser({
    organizationId: org.id,
    emailAddress: 'admin@localhost',
    firstName: 'Ferry',
    lastName: 'Admin',
    secretHash: hashSecret(userSecret),
  });
  fs.mkdirSync(config.dataDir, { recursive: true });
  fs.writeFileSync(credentialsFile, JSON.stringify({ userSecret, organizationSecret }, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(credentialsFile, 0o600);
  // A generated secret is printed once (nobody knows it yet); a preset one never is: the
  // operator has it, and process output usually ends up in a log collector.
  const shown = (secret: string, preset: string | null, variable: string) => (preset ? `<${variable}>` : secret);
  print('Created the first organization and user. Their secrets (shown once) are in ' + credentialsFile + ':');
  print(
    `  Authorization: User ${shown(userSecret, config.userSecret, 'FERRY_USER_SECRET')}, Organization ${shown(organizationSecret, config.orgSecret, 'FERRY_ORG_SECRET')}`,
  );
  return { created: true, credentialsFile };
}
