/**
 * A job's multipart uploads and its re-run (issue 25). S3 keeps the parts of an upload that is
 * neither completed nor aborted — stored, and billed — so a re-run after a crash must abort what
 * its crashed run started. The job journal records, per key:
 *
 * - `{"at": <ms>}` before CreateMultipartUpload is sent: the intent. A crash between the create
 *   and the next step leaves an upload the journal has no id for;
 * - `{"at": <ms>, "uploadId": "…"}` once S3 has answered, before any part is sent.
 *
 * On resume, an upload id is aborted directly. An intent without one is resolved with
 * ListMultipartUploads: the uploads of exactly that key started in the window the crashed create
 * can have reached S3 in (from the intent to the backend timeout after it, widened by
 * CLOCK_SLACK_MS for the difference between Ferry's and the server's clocks) are the crashed
 * run's, and are aborted. An upload of the same key by another writer in that same window — a
 * write racing this job for the same object — would be aborted too; any other is left alone.
 *
 * A server without ListMultipartUploads (s3rver answers NotImplemented; some S3-compatible
 * stores do too) cannot be asked: the element then says so through its warning hook, naming
 * the key, and the job goes on — the parts stay until a bucket lifecycle rule
 * (AbortIncompleteMultipartUpload) removes them, as after a crash without a journal.
 */
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';

/** How far Ferry's clock and the S3 server's may disagree, for the window above. */
export const CLOCK_SLACK_MS = 5 * 60_000;

/** A job journal entry of a multipart upload (see the header). */
export interface MultipartIntent {
  at: number;
  uploadId?: string;
}

/** The journal key of the multipart upload a job has in flight for `key`. */
export function multipartJournalKey(key: string): string {
  return `s3-multipart:${key}`;
}

/** Reads a journal value: JSON as above, or (journaled by an older version) a bare upload id. */
export function parseIntent(value: string): MultipartIntent {
  if (!value.startsWith('{')) return { at: 0, uploadId: value };
  const parsed = JSON.parse(value) as Partial<MultipartIntent>;
  return { at: Number(parsed.at) || 0, ...(typeof parsed.uploadId === 'string' ? { uploadId: parsed.uploadId } : {}) };
}

/**
 * Whether a listed multipart upload is one the crashed create of `intent` may have started:
 * exactly `key` (a listing by prefix also returns longer keys), started in the window.
 */
export function startedByIntent(upload: { Key?: string; UploadId?: string; Initiated?: Date }, key: string, intent: MultipartIntent, timeoutMs: number): boolean {
  const initiated = upload.Initiated?.getTime();
  if (upload.Key !== key || !upload.UploadId || initiated === undefined) return false;
  return initiated >= intent.at - CLOCK_SLACK_MS && initiated <= intent.at + timeoutMs + CLOCK_SLACK_MS;
}

/** What resolving an intent without an upload id came to. */
export type StaleOutcome = { aborted: number } | { unsupported: string };

/**
 * Aborts the multipart uploads of `key` that a create sent right after `intent.at` may have
 * started (see the header). Returns how many, or why the server could not be asked.
 */
export async function abortUnaccounted(client: S3Client, bucket: string, key: string, intent: MultipartIntent, timeoutMs: number): Promise<StaleOutcome> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    } catch (e) {
      const name = (e as { name?: string; Code?: string }).name ?? (e as { Code?: string }).Code ?? 'Error';
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (aborted === 0 && (name === 'NotImplemented' || status === 501 || status === 405)) return { unsupported: `${name}${status ? ` (${status})` : ''}` };
      throw e;
    }
    for (const upload of page.Uploads ?? []) {
      if (!startedByIntent(upload, key, intent, timeoutMs)) continue;
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.UploadId }));
        aborted += 1;
      } catch {
        // completed or aborted meanwhile
      }
    }
    if (!page.IsTruncated) return { aborted };
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
    if (keyMarker === undefined && uploadIdMarker === undefined) return { aborted };
  }
}
