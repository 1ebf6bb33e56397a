/**
 * The amazons3 element: Ferry's primitive storage operations on one S3 bucket (AWS or any
 * S3-compatible store). The instance root is the bucket root; see `keys.ts` for the mapping.
 *
 * Folder semantics over a flat key space:
 * - A folder exists when its marker object ("a/") exists or any key lies under its prefix.
 *   `mkdir` writes the marker; ancestors need none, because the new key implies them.
 * - Writes create no markers: a key implies its parents.
 * - Removing or moving away the last object of a folder would make the folder vanish, which no
 *   file system does; so afterwards the parent gets a marker when nothing else keeps it alive.
 * - Copies are server-side (CopyObject per key, 16 at a time); move = copy, then delete.
 * - No torn objects: an object appears only complete (one PUT, or a completed multipart upload).
 *   An async job journals its intent to start a multipart upload, then the upload's id (job
 *   context), so its re-run after a crash aborts the stale upload (whose parts would otherwise
 *   be kept, and billed, by the store); stale-uploads.ts says how, including a crash between
 *   the two and servers without ListMultipartUploads.
 * - A resumed copy (a re-run) skips the keys its crashed run already copied.
 */
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { backendFailed, cancelled, conflict, invalid, isFerryError, notFound } from '../../errors.js';
import type { BackendAccount, Element, Entry, Revision, StorageInfo, TransferOptions, WriteOptions } from '../element.js';
import { throwIfStopped, type JobContext } from '../../documents/job.js';
import { crashPoint } from '../../testing/crash-points.js';
import { pausePoint } from '../../testing/pause-points.js';
import { forEachBounded } from './concurrency.js';
import { copyObject } from './copy.js';
import { mapS3Error } from './errors.js';
import { keyOf, parentOf, prefixOf } from './keys.js';
import { childrenOfPage, descendantsOfObject, fileEntry, folderEntry, pages, type ListPage } from './listing.js';
import { presignGet } from './presign.js';
import { bucketOwner, objectVersions, rawObject } from './provider.js';
import { abortUnaccounted, multipartJournalKey, parseIntent } from './stale-uploads.js';
import type { S3Settings } from './settings.js';

/** Multipart upload part size: small enough to keep memory flat, large enough for few parts. */
export const UPLOAD_PART_BYTES = 8 * 1024 * 1024;
/** Parts uploaded at once; buffered memory per upload is about (this + 1) × part size. */
export const UPLOAD_QUEUE = 3;
/** Objects copied at once in a folder copy. */
export const COPY_CONCURRENCY = 16;

const ROOT_ENTRY: Entry = { path: '/', directory: true, size: 0 };

/** An Element backed by one S3 bucket. */
export class S3Element implements Element {
  private readonly bucket: string;

  constructor(
    private readonly client: S3Client,
    private readonly settings: S3Settings,
    private readonly timeoutMs: number,
    /** Where the element tells what the operator should know (ElementContext.warn). */
    private readonly warn: (details: Record<string, unknown>, message: string) => void = () => undefined,
  ) {
    this.bucket = settings.bucket;
  }

  /** Runs one S3 call, translating its failure into a Ferry error about `path`. */
  private async call<T>(operation: string, path: string | undefined, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isFerryError(error, 'cancelled')) throw error;
      throw mapS3Error(error, {
        operation,
        path,
        bucket: this.bucket,
        timeoutMs: this.timeoutMs,
        secrets: [this.settings.secretKey],
      });
    }
  }

  private lister(operation: string, path: string | undefined): ListPage {
    return (input) =>
      this.call(operation, path, () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, ...input })));
  }

  /** Size and date of the object at `key`, or null when there is none. */
  private async head(key: string, path: string): Promise<Entry | null> {
    try {
      const head = await this.call('read the metadata of', path, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })),
      );
      return fileEntry(path, { Size: head.ContentLength, LastModified: head.LastModified });
    } catch (error) {
      if (isFerryError(error, 'not_found')) return null;
      throw error;
    }
  }

  /** The first object under `prefix` (the marker itself counts), or null when it is empty. */
  private async firstUnder(prefix: string, path: string): Promise<_Object | null> {
    const page = await this.lister('look up', path)({ Prefix: prefix, MaxKeys: 1 });
    return page.Contents?.[0] ?? null;
  }

  /** Every object under `prefix`, page by page. */
  private async *objectsUnder(prefix: string, path: string, operation: string): AsyncGenerator<_Object> {
    for await (const page of pages(this.lister(operation, path), { Prefix: prefix })) {
      yield* page.Contents ?? [];
    }
  }

  private async putMarker(folder: string): Promise<void> {
    await this.call('create the folder', folder, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: prefixOf(folder), Body: new Uint8Array(0), ContentLength: 0 }),
      ),
    );
  }

  /** Gives `folder` a marker when nothing under it keeps it alive any more. */
  private async keepFolder(folder: string): Promise<void> {
    if (folder === '/') return;
    if ((await this.firstUnder(prefixOf(folder), folder)) === null) await this.putMarker(folder);
  }

  /** Deletes every object under `prefix` in batches of up to 1,000; returns how many. */
  private async deleteUnder(prefix: string, path: string): Promise<number> {
    let count = 0;
    for await (const page of pages(this.lister('list for removal', path), { Prefix: prefix })) {
      const keys = (page.Contents ?? []).map((object) => ({ Key: object.Key as string }));
      if (keys.length === 0) continue;
      const result = await this.call('remove', path, () =>
        this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }),
        ),
      );
      const failed = result.Errors?.[0];
      if (failed) {
        throw backendFailed(`S3 failed to remove '${path}': ${result.Errors?.length} object(s) were not deleted.`, {
          providerMessage: `${failed.Code ?? 'Error'}: ${failed.Message ?? ''} (key ${failed.Key ?? '?'})`,
        });
      }
      count += keys.length;
    }
    return count;
  }

  private refuseIntoItself(from: string, to: string, verb: string): void {
    if (to === from || from === '/' || to.startsWith(`${from}/`)) {
      throw invalid(`Cannot ${verb} '${from}' into itself ('${to}'); choose a destination outside it.`);
    }
  }

  async ping(): Promise<void> {
    // ListObjectsV2 rather than HeadBucket: a HEAD error has no body, so a wrong key, a denied
    // policy and a missing bucket would all look alike.
    await this.lister(`list the bucket '${this.bucket}'`, undefined)({ MaxKeys: 1 });
  }

  async storage(): Promise<StorageInfo> {
    // S3 has no quota, and summing every object's size would cost a full listing.
    return { total: null, used: null, shared: null };
  }

  async stat(path: string): Promise<Entry | null> {
    if (path === '/') return ROOT_ENTRY;
    const [file, first] = await Promise.all([this.head(keyOf(path), path), this.firstUnder(prefixOf(path), path)]);
    if (file) return file;
    if (first === null) return null;
    return folderEntry(path, first.Key === prefixOf(path) ? first.LastModified : undefined);
  }

  async *list(path: string): AsyncIterable<Entry> {
    const prefix = prefixOf(path);
    const seen = new Set<string>();
    let found = false;
    for await (const page of pages(this.lister('list', path), { Prefix: prefix, Delimiter: '/' })) {
      if ((page.Contents?.length ?? 0) > 0 || (page.CommonPrefixes?.length ?? 0) > 0) found = true;
      yield* childrenOfPage(path, prefix, page, seen);
    }
    if (!found && path !== '/') throw notFound(`No folder exists at '${path}'.`);
  }

  async *walk(path: string): AsyncIterable<Entry> {
    const prefix = prefixOf(path);
    const seen = new Set<string>();
    let found = false;
    for await (const object of this.objectsUnder(prefix, path, 'list')) {
      found = true;
      yield* descendantsOfObject(path, prefix, object, seen);
    }
    if (!found && path !== '/') throw notFound(`No folder exists at '${path}'.`);
  }

  async read(path: string): Promise<Readable> {
    const object = await this.call('read', path, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: keyOf(path) })),
    );
    // In Node the SDK's body is the HTTP response stream itself: nothing is buffered.
    return object.Body as Readable;
  }

  /** Aborts the multipart upload(s) a crashed run of `job` left for `key` (stale-uploads.ts). */
  private async abortStaleUpload(job: JobContext | undefined, key: string, path: string): Promise<void> {
    const value = await job?.journal?.get(multipartJournalKey(key));
    if (!value) return;
    const intent = parseIntent(value);
    if (!intent.uploadId) {
      // The crashed run may have died between creating its upload and journaling the id.
      try {
        const outcome = await abortUnaccounted(this.client, this.bucket, key, intent, this.timeoutMs);
        if ('unsupported' in outcome) {
          this.warn(
            { bucket: this.bucket, key, eventId: job?.eventId, providerMessage: outcome.unsupported },
            'a crashed upload may have left a multipart upload of this key, and this S3 server cannot list multipart uploads to abort it; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes such parts',
          );
        }
      } catch (e) {
        this.warn({ bucket: this.bucket, key, eventId: job?.eventId, err: e }, 'looking for the multipart upload a crashed upload may have left failed; it stays until a lifecycle rule removes it');
      }
      return;
    }
    try {
      await this.call('abort the earlier upload of', path, () =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: intent.uploadId })),
      );
    } catch {
      // NoSuchUpload: completed or aborted already. Any other refusal (a server without the
      // call) leaves the stale parts where they are, as a crash without a re-run would: the
      // upload itself goes on.
    }
  }

  /**
   * The client an upload uses: for a job, one that journals its intent before it creates a
   * multipart upload, and the upload's id before any part is sent, so a re-run can abort it.
   */
  private uploadClient(job: JobContext | undefined, key: string, sent: SentRequests): S3Client {
    const journal = job?.journal;
    if (!journal) return this.client;
    const client = this.client;
    return new Proxy(client, {
      get(target, property, receiver) {
        if (property !== 'send') return Reflect.get(target, property, receiver);
        return (command: any, ...rest: any[]) => {
          const request = (async () => {
            const creating = command instanceof CreateMultipartUploadCommand;
            const at = Date.now();
            if (creating) await journal.put(multipartJournalKey(key), JSON.stringify({ at }));
            const output: any = await (client as any).send(command, ...rest);
            if (creating && output?.UploadId) {
              sent.uploadId = output.UploadId;
              crashPoint('multipart-created');
              await journal.put(multipartJournalKey(key), JSON.stringify({ at, uploadId: output.UploadId }));
            }
            return output;
          })();
          sent.inFlight.add(request);
          void request.catch(() => undefined).finally(() => sent.inFlight.delete(request));
          return request;
        };
      },
    });
  }

  /**
   * After a cancelled upload (issue 16): waits for the requests it still had in flight, then
   * aborts its multipart upload, if it started one, so no part stays stored (and billed).
   */
  private async abandonUpload(sent: SentRequests, key: string): Promise<void> {
    while (sent.inFlight.size > 0) await Promise.allSettled([...sent.inFlight]);
    if (!sent.uploadId) return;
    await this.client
      .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: sent.uploadId }))
      .catch(() => undefined); // aborted already (by the SDK's own clean-up), or the server refuses
  }

  async write(path: string, body: Readable, options: WriteOptions = {}): Promise<Entry> {
    if (options.resume) await this.abortStaleUpload(options.job, keyOf(path), path);
    const sent: SentRequests = { inFlight: new Set() };
    const upload = new Upload({
      client: this.uploadClient(options.job, keyOf(path), sent),
      params: { Bucket: this.bucket, Key: keyOf(path), Body: body, ContentType: options.contentType },
      partSize: UPLOAD_PART_BYTES,
      queueSize: UPLOAD_QUEUE,
      leavePartsOnError: false,
    });
    upload.on('httpUploadProgress', () => crashPoint('part-uploaded'));
    // A job's cancel stops the upload between two parts, and its multipart upload is aborted.
    const signal = options.job?.signal;
    const stop = () => void upload.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      await upload.done();
    } catch (error) {
      if (signal?.aborted) {
        await this.abandonUpload(sent, keyOf(path));
        throw cancelled();
      }
      // A failing source stream (client went away, size limit) is not the backend's fault.
      if (body.errored) throw body.errored;
      throw mapS3Error(error, {
        operation: 'write',
        path,
        bucket: this.bucket,
        timeoutMs: this.timeoutMs,
        secrets: [this.settings.secretKey],
      });
    }
    finally {
      signal?.removeEventListener('abort', stop);
    }
    const written = await this.head(keyOf(path), path);
    if (written === null) throw backendFailed(`S3 accepted '${path}' but does not show it afterwards.`);
    return written;
  }

  async mkdir(path: string): Promise<Entry> {
    if (path === '/') return ROOT_ENTRY;
    const existing = await this.stat(path);
    if (existing?.directory) return existing;
    if (existing) throw conflict(`A file already exists at '${path}'.`);
    await this.putMarker(path);
    const now = new Date();
    return folderEntry(path, now);
  }

  async remove(path: string): Promise<void> {
    if (path === '/') throw invalid('The root folder cannot be removed; remove its contents instead.');
    const key = keyOf(path);
    if (await this.head(key, path)) {
      await this.call('remove', path, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    } else if ((await this.deleteUnder(prefixOf(path), path)) === 0) {
      throw notFound(`Nothing exists at '${path}'.`);
    }
    await this.keepFolder(parentOf(path));
  }

  async copy(from: string, to: string, options: TransferOptions = {}): Promise<void> {
    this.refuseIntoItself(from, to, 'copy');
    const file = await this.head(keyOf(from), from);
    if (file) {
      // An object appears only whole: one there already is a resumed run's complete copy.
      if (options.resume && (await this.head(keyOf(to), to))) return;
      await this.call('copy', from, () => copyObject(this.client, this.bucket, keyOf(from), keyOf(to), file.size, options.job?.signal));
      crashPoint('file-placed');
      options.job?.progress({ items: 1, bytes: file.size });
      return;
    }
    const job = options.job;
    const source = prefixOf(from);
    const target = prefixOf(to);
    // A re-run skips what its crashed run copied (each object there is complete).
    const done = new Set<string>();
    if (options.resume) for await (const object of this.objectsUnder(target, to, 'list for copy')) done.add(object.Key as string);
    const counting = job ? this.countForProgress(source, target, from, done, job) : undefined;
    let copied = 0;
    try {
      await forEachBounded(this.objectsUnder(source, from, 'list for copy'), COPY_CONCURRENCY, async (object) => {
        const key = object.Key as string;
        copied += 1;
        const destination = target + key.slice(source.length);
        if (done.has(destination)) return;
        // The safe point between two objects (issue 16): objects copied so far stay.
        if (job) await pausePoint('copy-file', job.eventId, job.signal);
        throwIfStopped(job);
        await this.call('copy', from, () => copyObject(this.client, this.bucket, key, destination, object.Size ?? 0, job?.signal));
        crashPoint('file-placed');
        job?.progress({ items: 1, bytes: object.Size ?? 0 });
      });
    } finally {
      counting?.stop();
    }
    if (copied === 0) throw notFound(`Nothing exists at '${from}'.`);
  }

  /**
   * The totals of a job's folder copy (objects and bytes still to copy), reported as its
   * progress as soon as they are known. The copy's own listing is read only as fast as its
   * copies drain (flat memory), so it learns the totals only at the end; this second listing,
   * beside it, costs one request per 1,000 objects and knows them long before. `stop`: the copy
   * has ended, its own figures are final.
   */
  private countForProgress(source: string, target: string, from: string, done: Set<string>, job: JobContext): { stop(): void } {
    let stopped = false;
    void (async () => {
      let items = 0;
      let bytes = 0;
      for await (const object of this.objectsUnder(source, from, 'list for copy')) {
        if (stopped || job.signal.aborted) return;
        if (done.has(target + (object.Key as string).slice(source.length))) continue;
        items += 1;
        bytes += object.Size ?? 0;
      }
      if (!stopped) job.progress({ itemsTotal: items, bytesTotal: bytes });
    })().catch(() => undefined); // totals are a hint: the copy's own listing reports a failure
    return {
      stop: () => {
        stopped = true;
      },
    };
  }

  async move(from: string, to: string, options: TransferOptions = {}): Promise<void> {
    this.refuseIntoItself(from, to, 'move');
    // S3 has no rename: copy server-side, then delete the source (which keeps its parent alive).
    // A re-run finishes both halves: what is left of the source is copied, then deleted.
    await this.copy(from, to, options);
    await this.remove(from);
  }

  async providerLink(path: string, expiresInSeconds: number): Promise<string | null> {
    return this.call('sign a link to', path, () => presignGet(this.client, this.bucket, keyOf(path), expiresInSeconds));
  }

  raw(path: string): Promise<Record<string, unknown> | null> {
    return rawObject(this.client, this.bucket, path, (op, p, run) => this.call(op, p, run));
  }

  revisions(path: string): Promise<Revision[] | null> {
    return objectVersions(this.client, this.bucket, path, (op, p, run) => this.call(op, p, run));
  }

  account(): Promise<BackendAccount | null> {
    return bucketOwner(this.client, this.bucket);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** What an upload's client sent (see uploadClient): its multipart upload id, and requests still running. */
interface SentRequests {
  uploadId?: string;
  inFlight: Set<Promise<unknown>>;
}
