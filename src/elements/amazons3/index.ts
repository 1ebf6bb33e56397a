/**
 * The `amazons3` element's catalog entry and factory: any S3-compatible object store (AWS,
 * MinIO, Ceph, s3rver...) as a documents backend. Configuration keys live in `settings.ts`,
 * the client set-up in `client.ts`, the operations in `s3-element.ts`.
 */
import { COMMON_CONFIG_KEYS, requireEgress, type ElementDefinition } from '../element.js';
import { createS3Client } from './client.js';
import { S3Element } from './s3-element.js';
import { S3_CONFIG_KEYS, parseS3Settings } from './settings.js';

/** Catalog entry and factory of the amazons3 element (id 2). */
export const amazons3: ElementDefinition = {
  id: 2,
  key: 'amazons3',
  name: 'Amazon S3',
  hub: 'documents',
  description: 'Files and folders in an Amazon S3 bucket or any S3-compatible object store.',
  configuration: [...S3_CONFIG_KEYS, ...COMMON_CONFIG_KEYS],
  create(configuration, context) {
    const settings = parseS3Settings(configuration);
    const client = createS3Client(settings, context.backendTimeoutMs, requireEgress(context, 'amazons3').connect);
    return new S3Element(client, settings, context.backendTimeoutMs, context.warn);
  },
};
