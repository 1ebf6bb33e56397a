/**
 * The sftp element's configuration: the catalog's keys and the parser that turns an instance's
 * configuration map into typed, validated settings. Pure (no network): `create()` must not
 * contact the server, and bad input is refused with `invalid` naming the key. Secret values
 * (password, key, passphrase) never appear in a message.
 */
import { invalid } from '../../errors.js';
import type { ConfigKey } from '../element.js';
import { checkPrivateKey } from './keys.js';

export const HOSTNAME = 'hostname';
export const PORT = 'port';
export const USERNAME = 'username';
export const PASSWORD = 'password';
export const PRIVATE_KEY = 'private_key';
export const PRIVATE_KEY_PASSPHRASE = 'private_key_passphrase';
export const HOME_DIRECTORY = 'home_directory';
export const HOST_FINGERPRINT = 'sftp.host.fingerprint';

/** The element's own configuration keys, as the catalog shows them. */
export const SFTP_CONFIG_KEYS: ConfigKey[] = [
  { key: HOSTNAME, name: 'Host name', required: true, secret: false, egress: 'host', description: 'Host name or IP address of the SFTP server.' },
  { key: PORT, name: 'Port', required: false, secret: false, default: '22' },
  { key: USERNAME, name: 'User name', required: true, secret: false },
  {
    key: PASSWORD,
    name: 'Password',
    required: false,
    secret: true,
    description: 'Password of the user; give this or private_key.',
  },
  {
    key: PRIVATE_KEY,
    name: 'Private key',
    required: false,
    secret: true,
    description: "Base64 of a PEM private key: OpenSSH format ('BEGIN OPENSSH PRIVATE KEY', as ssh-keygen writes), or classic PEM RSA/EC ('BEGIN RSA/EC PRIVATE KEY'); PKCS#8 is not supported. Give this or password.",
  },
  { key: PRIVATE_KEY_PASSPHRASE, name: 'Private key passphrase', required: false, secret: true },
  {
    key: HOME_DIRECTORY,
    name: 'Home directory',
    required: false,
    secret: false,
    description:
      "Absolute folder on the server that is the instance's root; every path is confined under it. Default: the login folder the server reports.",
  },
  {
    key: HOST_FINGERPRINT,
    name: 'Host key fingerprint',
    required: false,
    secret: false,
    description:
      "Pins the server's host key: 'SHA256:<base64>' as `ssh-keygen -lf` prints it. When set, a server with another key is refused.",
  },
];

/** Validated settings of one sftp instance. */
export interface SftpSettings {
  host: string;
  port: number;
  username: string;
  password: string | null;
  /** The decoded PEM text. */
  privateKey: string | null;
  passphrase: string | null;
  /** Absolute folder without trailing slash ("/" for the server root), or null = login folder. */
  homeDirectory: string | null;
  /** The pinned fingerprint's base64 part (no "SHA256:" prefix, no padding), or null. */
  fingerprint: string | null;
}

function optional(config: Record<string, string>, key: string): string | null {
  const value = config[key];
  if (value === undefined || value === null || String(value).trim() === '') return null;
  return String(value);
}

function required(config: Record<string, string>, key: string, hint: string): string {
  const value = optional(config, key);
  if (value === null) throw invalid(`The configuration key '${key}' is required for sftp: ${hint}.`);
  return value;
}

function parsePort(text: string | null): number {
  if (text === null) return 22;
  const port = Number(text.trim());
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`The configuration key '${PORT}' must be a TCP port between 1 and 65535, not '${text}'.`);
  }
  return port;
}

function parseHome(text: string | null): string | null {
  if (text === null) return null;
  const home = text.trim();
  if (!home.startsWith('/') || home.includes('\0') || /[\r\n]/.test(home)) {
    throw invalid(`The configuration key '${HOME_DIRECTORY}' must be an absolute folder on the server, such as '/home/alice/shared'.`);
  }
  return home.replace(/\/+$/, '') || '/';
}

function parseFingerprint(text: string | null): string | null {
  if (text === null) return null;
  const match = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text.trim());
  if (!match) {
    throw invalid(
      `The configuration key '${HOST_FINGERPRINT}' must be 'SHA256:' followed by 43 base64 characters, as \`ssh-keygen -lf <host key>\` prints it.`,
    );
  }
  return match[1];
}

function decodeKey(text: string | null): string | null {
  if (text === null) return null;
  const compact = text.replace(/\s+/g, '');
  const pem = /^[A-Za-z0-9+/]+={0,2}$/.test(compact) ? Buffer.from(compact, 'base64').toString('utf8') : '';
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]+-----END [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
    throw invalid(
      `The configuration key '${PRIVATE_KEY}' must be the base64 encoding of a PEM private key (a text starting with '-----BEGIN ... PRIVATE KEY-----').`,
    );
  }
  return pem;
}

/**
 * Validates an instance's configuration. Throws `invalid` naming the first bad key. The private
 * key is parsed (and decrypted with the passphrase) here, so a wrong key or passphrase is a
 * configuration error before any connection is attempted.
 */
export function parseSftpSettings(config: Record<string, string>): SftpSettings {
  const host = required(config, HOSTNAME, 'the SFTP server to connect to').trim();
  if (/\s|\//.test(host)) throw invalid(`The configuration key '${HOSTNAME}' must be a host name or IP address, not '${host}'.`);
  const port = parsePort(optional(config, PORT));
  const username = required(config, USERNAME, 'the user to log in as');
  const password = optional(config, PASSWORD);
  const privateKey = decodeKey(optional(config, PRIVATE_KEY));
  const passphrase = optional(config, PRIVATE_KEY_PASSPHRASE);
  if (password === null && privateKey === null) {
    throw invalid(`The configuration key '${PASSWORD}' or '${PRIVATE_KEY}' is required for sftp: give the user's password or a private key.`);
  }
  if (privateKey !== null) checkPrivateKey(privateKey, passphrase);
  return {
    host,
    port,
    username,
    password,
    privateKey,
    passphrase,
    homeDirectory: parseHome(optional(config, HOME_DIRECTORY)),
    fingerprint: parseFingerprint(optional(config, HOST_FINGERPRINT)),
  };
}
