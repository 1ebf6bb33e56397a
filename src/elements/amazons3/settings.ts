/**
 * The amazons3 element's configuration: the catalog's keys and the parser that turns an
 * instance's configuration map into typed, validated settings. Pure (no network): `create()`
 * must not contact the backend, and bad input must be refused with `invalid` naming the key.
 *
 * Backend differences are data here (STYLE §3): an explicit endpoint means "some S3-compatible
 * store", which selects path-style addressing and the conservative checksum mode by default.
 */
import { invalid } from '../../errors.js';
import type { ConfigKey } from '../element.js';

export const ACCESS_KEY = 'filemanagement.provider.access_key';
export const SECRET_KEY = 'filemanagement.provider.secret_key';
export const BUCKET_NAME = 'filemanagement.provider.bucket_name';
export const REGION_NAME = 'filemanagement.provider.region_name';
export const ENDPOINT = 'filemanagement.provider.endpoint';
export const PATH_STYLE = 'filemanagement.provider.path_style';
export const TAGGING = 'document.tagging';

/** The region AWS assumes when none is given; also what most S3-compatible stores accept. */
export const DEFAULT_REGION = 'us-east-1';

/** The element's own configuration keys, as the catalog shows them. */
export const S3_CONFIG_KEYS: ConfigKey[] = [
  { key: ACCESS_KEY, name: 'Access key id', required: true, secret: false },
  { key: SECRET_KEY, name: 'Secret access key', required: true, secret: true },
  { key: BUCKET_NAME, name: 'Bucket name', required: true, secret: false },
  {
    key: REGION_NAME,
    name: 'Region',
    required: false,
    secret: false,
    default: DEFAULT_REGION,
  },
  {
    key: ENDPOINT,
    name: 'Endpoint URL',
    required: false,
    secret: false,
    egress: 'url',
    description: 'URL of an S3-compatible store (MinIO, Ceph, s3rver...); leave empty for AWS.',
  },
  {
    key: PATH_STYLE,
    name: 'Path-style addressing',
    required: false,
    secret: false,
    description: 'true = https://host/bucket/key; false = https://bucket.host/key. Default: true when an endpoint is given, false for AWS.',
  },
  {
    key: TAGGING,
    name: 'Document tagging',
    required: false,
    secret: false,
    default: 'false',
    description: 'Accepted for Open Connectors compatibility; Ferry keeps tags itself for every element.',
  },
];

/** Validated settings of one amazons3 instance. */
export interface S3Settings {
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  /** Normalised endpoint URL, or null for AWS. */
  endpoint: string | null;
  pathStyle: boolean;
  tagging: boolean;
}

function required(config: Record<string, string>, key: string): string {
  const value = config[key];
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalid(`The configuration key '${key}' is required for amazons3.`);
  }
  return value.trim();
}

function optional(config: Record<string, string>, key: string): string | null {
  const value = config[key];
  if (value === undefined || value === null || String(value).trim() === '') return null;
  return String(value).trim();
}

function flag(config: Record<string, string>, key: string, fallback: boolean): boolean {
  const value = optional(config, key);
  if (value === null) return fallback;
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalid(`The configuration key '${key}' must be 'true' or 'false', not '${value}'.`);
}

function parseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`The configuration key '${ENDPOINT}' must be an http or https URL, e.g. 'https://minio.example.com:9000'.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`The configuration key '${ENDPOINT}' must be an http or https URL, not '${url.protocol}'.`);
  }
  if (url.username !== '' || url.password !== '') {
    // Credentials belong in the access/secret keys, never in a URL that is shown on read.
    throw invalid(`The configuration key '${ENDPOINT}' must not contain a user name or password.`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw invalid(`The configuration key '${ENDPOINT}' must not contain a query or fragment.`);
  }
  return url.toString().replace(/\/+$/, '');
}

/**
 * Validates an instance's configuration. Throws `invalid` naming the first bad key; never puts
 * the secret key's value in a message.
 */
export function parseS3Settings(config: Record<string, string>): S3Settings {
  const accessKey = required(config, ACCESS_KEY);
  const secretKey = required(config, SECRET_KEY);
  const bucket = required(config, BUCKET_NAME);
  if (bucket.includes('/')) {
    throw invalid(`The configuration key '${BUCKET_NAME}' must be a bucket name without '/', not '${bucket}'.`);
  }
  const region = optional(config, REGION_NAME) ?? DEFAULT_REGION;
  if (!/^[a-z0-9-]+$/i.test(region)) {
    throw invalid(`The configuration key '${REGION_NAME}' must be a region name such as 'eu-west-1', not '${region}'.`);
  }
  const endpointText = optional(config, ENDPOINT);
  const endpoint = endpointText === null ? null : parseEndpoint(endpointText);
  const pathStyle = flag(config, PATH_STYLE, endpoint !== null);
  const tagging = flag(config, TAGGING, false);
  return { accessKey, secretKey, bucket, region, endpoint, pathStyle, tagging };
}
