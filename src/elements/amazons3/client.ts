/**
 * Builds the AWS SDK client of one amazons3 instance from its validated settings.
 *
 * Choices, and why:
 * - `maxAttempts: 2`: one quick retry hides a dropped keep-alive connection, yet a dead endpoint
 *   fails in well under a second instead of the SDK's default backoff ladder.
 * - Timeouts are per socket, not per request: `connectionTimeout` bounds the connect and
 *   `socketTimeout` bounds silence. A whole-request timer would cut a large upload part or a
 *   long download that is making progress; a silent server is what "did not answer" means.
 * - Checksums: against AWS the SDK's default integrity checksums stay on. For an explicit
 *   endpoint they are sent only when S3 requires them, because many S3-compatible stores
 *   (s3rver, older MinIO and Ceph) do not understand the aws-chunked trailer encoding the
 *   default uses for streamed bodies, and would store the framing bytes inside the object.
 * - Static credentials: the SDK must never fall back to the host's environment, profile files or
 *   instance metadata — an instance uses exactly the keys its owner configured.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { guardedAgents, type GuardedConnect } from '../../async/egress-connect.js';
import type { S3Settings } from './settings.js';

/**
 * Creates the S3 client for `settings`; `timeoutMs` bounds connecting and each silence. Every
 * socket is opened by `connect` (the egress policy, checked at connect time).
 */
export function createS3Client(settings: S3Settings, timeoutMs: number, connect: GuardedConnect): S3Client {
  const checksums = settings.endpoint === null ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint === null ? {} : { endpoint: settings.endpoint }),
    forcePathStyle: settings.pathStyle,
    credentials: { accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey },
    maxAttempts: 2,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    requestHandler: {
      connectionTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      // Each new connection passes the egress policy on the address it is about to reach.
      ...guardedAgents(connect, { keepAlive: true, maxSockets: 64 }),
    },
  });
}
