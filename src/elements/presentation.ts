/**
 * How the catalog shows each element beyond its definition: the fields of the platform's
 * element object (authentication type, protocol, image, account descriptions). Backend
 * differences as data, in one record; the HTTP edge shapes the JSON from it.
 */
import type { ElementDefinition } from './element.js';

export interface ElementProfile {
  /** The platform's authentication type: how an instance proves itself to the backend. */
  authenticationType: 'basic' | 'custom';
  /** The wire protocol Ferry speaks to the backend. */
  protocolType: 'file' | 'http' | 'sftp';
  image: string | null;
  configDescription: string;
  signupURL: string | null;
}

const PROFILES: Record<string, ElementProfile> = {
  localfs: {
    authenticationType: 'custom',
    protocolType: 'file',
    image: null,
    configDescription: 'A folder under the operator\'s FERRY_LOCALFS_BASE on the Ferry host',
    signupURL: null,
  },
  amazons3: {
    authenticationType: 'basic',
    protocolType: 'http',
    image: null,
    configDescription: 'An access key pair and a bucket of Amazon S3 or any S3-compatible store',
    signupURL: 'http://aws.amazon.com',
  },
  sftp: {
    authenticationType: 'basic',
    protocolType: 'sftp',
    image: null,
    configDescription: 'Host, port, user and password or private key of an SFTP server',
    signupURL: null,
  },
};

const DEFAULT_PROFILE: ElementProfile = {
  authenticationType: 'custom',
  protocolType: 'http',
  image: null,
  configDescription: '',
  signupURL: null,
};

export function profileOf(def: ElementDefinition): ElementProfile {
  return PROFILES[def.key] ?? DEFAULT_PROFILE;
}
