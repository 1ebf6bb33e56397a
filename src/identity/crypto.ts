/**
 * Encryption at rest of backend credentials and webhook signature keys: AES-256-GCM under the
 * master key (FERRY_MASTER_KEY, or a key generated once into <dataDir>/master.key, mode 0600).
 * Ciphertexts are self-describing strings, `enc:v1:<iv>:<tag>:<ciphertext>` (base64url parts),
 * so a stored configuration can mix clear values and secrets and a later key version can be
 * told apart.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const PREFIX = 'enc:v1:';

export class MasterKey {
  /**
   * `previous` keys only decrypt: they let a rotation that stopped half-way (some values
   * re-encrypted, some not) still read everything.
   */
  private constructor(
    private readonly key: Buffer,
    private readonly previous: Buffer[] = [],
  ) {}

  /** Parses a base64 (or base64url) 32-byte key; throws naming the problem. */
  static fromBase64(text: string): MasterKey {
    return new MasterKey(parseKey(text));
  }

  static generate(): MasterKey {
    return new MasterKey(crypto.randomBytes(32));
  }

  /**
   * The configured key, else the key file in the data dir (first line current, later lines
   * previous keys kept during a rotation), else a new key written there.
   */
  static load(configured: string | null, dataDir: string): MasterKey {
    if (configured) return MasterKey.fromBase64(configured);
    const file = keyFile(dataDir);
    if (fs.existsSync(file)) {
      const [current, ...previous] = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
      return new MasterKey(parseKey(current ?? ''), previous.map(parseKey));
    }
    fs.mkdirSync(dataDir, { recursive: true });
    const key = MasterKey.generate();
    fs.writeFileSync(file, key.toBase64() + '\n', { mode: 0o600, flag: 'wx' });
    return key;
  }

  /** This key as current with `older` kept for decryption only. */
  withPrevious(older: MasterKey): MasterKey {
    return new MasterKey(this.key, [older.key, ...older.previous]);
  }

  /** A key for another purpose (link signing), derived so the master key itself is never reused. */
  derive(label: string): Buffer {
    return crypto.createHmac('sha256', this.key).update(label).digest();
  }

  /**
   * The key derived for `label` from this key, then from each previous key: data sealed with a
   * derived key (bulk results) stays readable while a rotation is under way.
   */
  deriveAll(label: string): Buffer[] {
    return [this.key, ...this.previous].map((k) => crypto.createHmac('sha256', k).update(label).digest());
  }

  toBase64(): string {
    return this.key.toString('base64');
  }

  /** Current key then previous keys, as the key file lists them. */
  allBase64(): string[] {
    return [this.key, ...this.previous].map((k) => k.toString('base64'));
  }

  encrypt(plain: string): string {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return PREFIX + [iv, cipher.getAuthTag(), ct].map((b) => b.toString('base64url')).join(':');
  }

  decrypt(sealed: string): string {
    if (!isSealed(sealed)) throw new Error('not an encrypted value');
    const [iv, tag, ct] = sealed.slice(PREFIX.length).split(':').map((p) => Buffer.from(p, 'base64url'));
    let failure: unknown;
    for (const key of [this.key, ...this.previous]) {
      try {
        const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
      } catch (e) {
        failure = e;
      }
    }
    throw new Error('cannot decrypt a stored secret with the master key (was FERRY_MASTER_KEY changed?)', { cause: failure });
  }
}

function parseKey(text: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw new Error('FERRY_MASTER_KEY must be the base64 of exactly 32 bytes (openssl rand -base64 32)');
  return key;
}

/** Where the generated master key lives. */
export function keyFile(dataDir: string): string {
  return path.join(dataDir, 'master.key');
}

export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}
