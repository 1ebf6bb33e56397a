/**
 * Private-key checks done at configuration time, with the very parser the connection uses
 * (ssh2's `utils.parseKey`), so "the key cannot be read" and "the passphrase is wrong" are
 * reported as configuration errors naming the key instead of as a failed connection.
 *
 * ssh2 is reached through ssh2-sftp-client, which depends on it: resolving it from there keeps
 * working whatever layout the package manager chose for node_modules.
 */
import { createRequire } from 'node:module';
import { invalid } from '../../errors.js';

type Ssh2 = typeof import('ssh2');

let ssh2: Ssh2 | undefined;

function loadSsh2(): Ssh2 {
  if (!ssh2) {
    const here = createRequire(import.meta.url);
    ssh2 = createRequire(here.resolve('ssh2-sftp-client'))('ssh2') as Ssh2;
  }
  return ssh2;
}

/**
 * Throws `invalid` naming `private_key` or `private_key_passphrase` when the PEM cannot be
 * used. ssh2's own reason is kept as `providerMessage`: it never contains key material.
 */
export function checkPrivateKey(pem: string, passphrase: string | null): void {
  if (/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(pem)) {
    throw invalid(
      "The configuration key 'private_key' holds a PKCS#8 key, which the SFTP client cannot read: convert it to OpenSSH format with `ssh-keygen -p -f <key file>`.",
    );
  }
  const encrypted = /ENCRYPTED/.test(pem) || isEncryptedOpenSshKey(pem);
  if (encrypted && passphrase === null) {
    throw invalid("The configuration key 'private_key_passphrase' is required: the private key is encrypted.");
  }
  const parsed = loadSsh2().utils.parseKey(pem, passphrase ?? undefined);
  if (parsed instanceof Error) {
    throw encrypted
      ? invalid("The configuration key 'private_key_passphrase' does not decrypt the private key.", {
          providerMessage: parsed.message,
        })
      : invalid("The configuration key 'private_key' is not a private key the SFTP client can use.", {
          providerMessage: parsed.message,
        });
  }
}

/**
 * An OpenSSH-format key says in its binary body whether it is encrypted: the cipher name after
 * the "openssh-key-v1\0" magic is "none" for a plain key.
 */
function isEncryptedOpenSshKey(pem: string): boolean {
  const match = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END OPENSSH PRIVATE KEY-----/.exec(pem);
  if (!match) return false;
  const body = Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (body.length < magic.length + 4 || body.toString('latin1', 0, magic.length) !== magic) return false;
  const length = body.readUInt32BE(magic.length);
  const cipher = body.toString('latin1', magic.length + 4, magic.length + 4 + length);
  return cipher !== 'none';
}
