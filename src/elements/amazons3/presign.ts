/**
 * Presigned GET URLs (the backend's own expiring link, `providerLink`).
 *
 * Signing is delegated to `@aws-sdk/s3-request-presigner`, loaded on first use. While that
 * package is not installed the element simply has no provider link (null), which the contract
 * allows; Ferry's own signed link still works. The module name is held in a variable so the
 * build does not require the package to be present.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** S3 refuses presigned URLs valid for more than seven days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

type GetSignedUrl = (client: S3Client, command: GetObjectCommand, options: { expiresIn: number }) => Promise<string>;

const PRESIGNER_MODULE = '@aws-sdk/s3-request-presigner';
let presigner: Promise<GetSignedUrl | null> | undefined;

function loadPresigner(): Promise<GetSignedUrl | null> {
  presigner ??= import(PRESIGNER_MODULE).then(
    (module: { getSignedUrl?: GetSignedUrl }) => module.getSignedUrl ?? null,
    () => null,
  );
  return presigner;
}

/** A presigned GET URL for the object, or null when presigning is unavailable. */
export async function presignGet(
  client: S3Client,
  bucket: string,
  key: string,
  expiresInSeconds: number,
): Promise<string | null> {
  const getSignedUrl = await loadPresigner();
  if (getSignedUrl === null) return null;
  const expiresIn = Math.min(Math.max(1, Math.floor(expiresInSeconds)), MAX_PRESIGN_SECONDS);
  return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn });
}
