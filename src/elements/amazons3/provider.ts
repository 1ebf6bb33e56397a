/**
 * What S3 itself says, for the documents hub's platform routes: an object's raw description
 * (HeadObject, or the folder's prefix), a key's versions (ListObjectVersions on a bucket with
 * versioning), and the bucket owner (GetBucketAcl, else ListBuckets).
 *
 * Stores that do not implement a call (s3rver has no versioning and no ACLs) answer
 * NotImplemented / 501; that is "no such capability" (null), not a failure.
 */
import {
  GetBucketAclCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isFerryError } from '../../errors.js';
import type { BackendAccount, Revision } from '../element.js';
import { keyOf, prefixOf } from './keys.js';

/** Runs one S3 call, mapping its failure to a Ferry error (the element's `call`). */
export type S3Call = <T>(operation: string, path: string | undefined, run: () => Promise<T>) => Promise<T>;

interface SdkLikeError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** True when the store does not implement the call (or refuses it outright). */
function unsupported(e: unknown): boolean {
  const err = e as SdkLikeError;
  const code = err?.Code ?? err?.name;
  const status = err?.$metadata?.httpStatusCode;
  return code === 'NotImplemented' || code === 'AccessDenied' || status === 501 || status === 403 || status === 405;
}

/** The HeadObject answer of a file, or the prefix of a folder; null when nothing is there. */
export async function rawObject(client: S3Client, bucket: string, path: string, call: S3Call): Promise<Record<string, unknown> | null> {
  if (path === '/') return { Bucket: bucket, Prefix: '' };
  try {
    const head = await call('read the metadata of', path, () => client.send(new HeadObjectCommand({ Bucket: bucket, Key: keyOf(path) })));
    return {
      Bucket: bucket,
      Key: keyOf(path),
      ContentLength: head.ContentLength ?? null,
      ContentType: head.ContentType ?? null,
      ETag: head.ETag ?? null,
      LastModified: head.LastModified?.toISOString() ?? null,
      VersionId: head.VersionId ?? null,
      StorageClass: head.StorageClass ?? null,
      Metadata: head.Metadata ?? {},
    };
  } catch (e) {
    if (!isFerryError(e, 'not_found')) throw e;
  }
  const prefix = prefixOf(path);
  const page = await call('look up', path, () => client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 })));
  const first = page.Contents?.[0];
  if (!first) return null;
  return { Bucket: bucket, Prefix: prefix, Marker: first.Key === prefix, LastModified: first.Key === prefix ? (first.LastModified?.toISOString() ?? null) : null };
}

/**
 * The versions of the file at `path`, newest first; null when the bucket keeps none (versioning
 * never enabled, or a store without versioning).
 */
export async function objectVersions(client: S3Client, bucket: string, path: string, call: S3Call): Promise<Revision[] | null> {
  const key = keyOf(path);
  const found: Revision[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    let out;
    try {
      out = await client.send(
        new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
      );
    } catch (e) {
      if (unsupported(e)) return null;
      return call('list the versions of', path, () => Promise.reject(e));
    }
    for (const v of out.Versions ?? []) {
      if (v.Key !== key || !v.VersionId) continue;
      found.push({ id: v.VersionId, size: v.Size ?? 0, modifiedDate: v.LastModified, current: v.IsLatest === true });
    }
    if (!out.IsTruncated || out.NextKeyMarker === undefined || out.NextKeyMarker > key) break;
    keyMarker = out.NextKeyMarker;
    versionMarker = out.NextVersionIdMarker;
  }
  // Without versioning S3 reports one version with the id "null": that is no history.
  if (found.length === 0 || found.every((v) => v.id === 'null')) return null;
  found.sort((a, b) => (b.modifiedDate?.getTime() ?? 0) - (a.modifiedDate?.getTime() ?? 0));
  return found;
}

/** The bucket owner (GetBucketAcl), else the account owner (ListBuckets); null when neither answers. */
export async function bucketOwner(client: S3Client, bucket: string): Promise<BackendAccount | null> {
  for (const ask of [
    async () => (await client.send(new GetBucketAclCommand({ Bucket: bucket }))).Owner,
    async () => (await client.send(new ListBucketsCommand({}))).Owner,
  ]) {
    try {
      const owner = await ask();
      if (owner?.ID || owner?.DisplayName) return { id: owner.ID ?? null, name: owner.DisplayName ?? null };
    } catch {
      // Not implemented or not allowed: try the next source.
    }
  }
  return null;
}
