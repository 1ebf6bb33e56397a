/**
 * Server-side copy of one S3 object: the store copies the bytes itself, nothing passes through
 * Ferry (DESIGN §3.1). CopyObject handles objects up to 5 GiB; larger ones are copied as a
 * multipart upload whose parts are UploadPartCopy calls on byte ranges of the source.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { cancelled } from '../../errors.js';
import { forEachBounded } from './concurrency.js';
import { copySource } from './keys.js';

/** Largest object a single CopyObject may copy (S3's limit). */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
/** Preferred part size of a multipart copy; grown when the object needs over 10,000 parts. */
export const COPY_PART_BYTES = 512 * 1024 ** 2;
/** S3 allows at most this many parts in one multipart upload. */
export const MAX_PARTS = 10_000;
/** Parts copied at once within one multipart copy. */
const PART_CONCURRENCY = 4;

/** One part of a multipart copy: its number and inclusive byte range in the source. */
export interface CopyPart {
  partNumber: number;
  first: number;
  last: number;
}

/**
 * Splits an object of `size` bytes into consecutive parts of `partSize` bytes (the last one
 * shorter), growing the part size so there are at most MAX_PARTS parts.
 */
export function copyParts(size: number, partSize = COPY_PART_BYTES): CopyPart[] {
  if (!Number.isSafeInteger(size) || size <= 0) return [];
  const step = Math.max(partSize, Math.ceil(size / MAX_PARTS));
  const parts: CopyPart[] = [];
  for (let first = 0, partNumber = 1; first < size; first += step, partNumber += 1) {
    parts.push({ partNumber, first, last: Math.min(first + step, size) - 1 });
  }
  return parts;
}

/** The `x-amz-copy-source-range` header value of a part. */
export function rangeHeader(part: CopyPart): string {
  return `bytes=${part.first}-${part.last}`;
}

/** Copies `sourceKey` to `targetKey` inside `bucket` on the server; `size` picks the method. */
export async function copyObject(
  client: S3Client,
  bucket: string,
  sourceKey: string,
  targetKey: string,
  size: number,
  /** A job's stop signal: a multipart copy stops between two parts (and is aborted). */
  signal?: AbortSignal,
): Promise<void> {
  if (size <= MAX_SINGLE_COPY_BYTES) {
    await client.send(
      new CopyObjectCommand({ Bucket: bucket, Key: targetKey, CopySource: copySource(bucket, sourceKey) }),
    );
    return;
  }
  await multipartCopy(client, bucket, sourceKey, targetKey, size, signal);
}

async function multipartCopy(
  client: S3Client,
  bucket: string,
  sourceKey: string,
  targetKey: string,
  size: number,
  signal?: AbortSignal,
): Promise<void> {
  // CopyObject keeps type and user metadata by itself; a multipart copy must restate them.
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: sourceKey }));
  const created = await client.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: targetKey,
      ContentType: head.ContentType,
      Metadata: head.Metadata,
    }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const source = copySource(bucket, sourceKey);
  const completed: CompletedPart[] = [];
  try {
    await forEachBounded(copyParts(size), PART_CONCURRENCY, async (part) => {
      if (signal?.aborted) throw cancelled();
      const result = await client.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: targetKey,
          UploadId: uploadId,
          PartNumber: part.partNumber,
          CopySource: source,
          CopySourceRange: rangeHeader(part),
        }),
      );
      completed.push({ PartNumber: part.partNumber, ETag: result.CopyPartResult?.ETag });
    });
    completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: targetKey,
        UploadId: uploadId,
        MultipartUpload: { Parts: completed },
      }),
    );
  } catch (error) {
    // Abandoned parts are billed storage: abort, but report the original failure.
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: uploadId }))
      .catch(() => undefined);
    throw error;
  }
}
