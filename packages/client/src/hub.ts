/**
 * Hub calls for one instance (`client.instance(token)`): files, folders, copy, metadata,
 * search and links of the documents hub, every object named by its path. `hub.async({...})`
 * gives the same writes sent as asynchronous requests, each answering `{eventId}` at once.
 */
import { call, callJson, type CallOptions, type Query, type Transport } from './http.js';
import { uploadBody, type UploadSource } from './upload.js';
import { BulkClient } from './bulk.js';
import type { Answer, AsyncAccepted, DocumentObject, Link, Page, Revision, Storage } from './types.js';

const H = '/hubs/documents';

export interface ListOptions {
  pageSize?: number;
  nextPage?: string;
  orderBy?: string;
  where?: string;
}

export interface UploadOptions {
  overwrite?: boolean;
  tags?: string[];
  /** The file's Content-Type; default application/octet-stream (a Blob's own type wins). */
  contentType?: string;
}

export interface CopyOptions {
  overwrite?: boolean;
  tags?: string[];
}

export interface AsyncOptions {
  /** Where the notification goes; default the instance's event.notification.callback.url. */
  callbackUrl?: string;
  /** Repeating a request with the same key returns the same event instead of a second one. */
  idempotencyKey?: string;
}

/** A Node Writable (fs.createWriteStream, …), duck-typed so the core needs no Node types. */
export interface NodeWritableLike {
  write(chunk: Uint8Array): boolean;
  end(callback?: () => void): unknown;
  once(event: 'drain' | 'error' | 'finish', listener: (...args: unknown[]) => void): unknown;
}

const fileName = (path: string) => path.split('/').filter(Boolean).pop() ?? 'file';

/** The operations both the synchronous and the asynchronous hub have. */
abstract class HubCalls<R> {
  constructor(
    protected readonly transport: Transport,
    protected readonly authorization: string,
  ) {}

  protected abstract send<T>(method: string, path: string, options: CallOptions): Promise<T | R>;

  /** Uploads a file from a Buffer, Uint8Array, Blob, web ReadableStream or Node stream. */
  upload(path: string, source: UploadSource, options: UploadOptions = {}): Promise<R | DocumentObject> {
    const { body, contentType } = uploadBody(source, fileName(path), options.contentType);
    return this.send<DocumentObject>('POST', `${H}/files`, {
      query: { path, overwrite: options.overwrite, tags: options.tags },
      body,
      headers: contentType ? { 'content-type': contentType } : {},
    });
  }

  copyFile(from: string, to: string, options: CopyOptions = {}): Promise<R | DocumentObject> {
    return this.send<DocumentObject>('POST', `${H}/files/copy`, { query: { path: from, overwrite: options.overwrite }, json: { path: to, tags: options.tags } });
  }

  copyFolder(from: string, to: string, options: CopyOptions = {}): Promise<R | DocumentObject> {
    return this.send<DocumentObject>('POST', `${H}/folders/copy`, { query: { path: from, overwrite: options.overwrite }, json: { path: to, tags: options.tags } });
  }

  createFolder(path: string, options: { tags?: string[] } = {}): Promise<R | DocumentObject> {
    return this.send<DocumentObject>('POST', `${H}/folders`, { json: { path, tags: options.tags } });
  }

  deleteFile(path: string): Promise<R | void> {
    return this.send<void>('DELETE', `${H}/files`, { query: { path } });
  }

  deleteFolder(path: string): Promise<R | void> {
    return this.send<void>('DELETE', `${H}/folders`, { query: { path } });
  }

  /** Renames, moves (`path`) or retags a file or folder. */
  updateMetadata(path: string, change: { path?: string; name?: string; tags?: string[] }, options: { overwrite?: boolean } = {}): Promise<R | DocumentObject> {
    return this.send<DocumentObject>('PATCH', `${H}/files/metadata`, { query: { path, overwrite: options.overwrite }, json: change });
  }
}

/** The documents hub of one instance. */
export class HubClient extends HubCalls<never> {
  /** Bulk jobs: exports (`bulk.query`) and batches (`bulk.files`), their status, records and errors. */
  readonly bulk = new BulkClient(this.transport, this.authorization);

  protected send<T>(method: string, path: string, options: CallOptions): Promise<T> {
    return callJson<T>(this.transport, this.authorization, method, path, options);
  }

  override upload(path: string, source: UploadSource, options?: UploadOptions): Promise<DocumentObject> {
    return super.upload(path, source, options);
  }
  override copyFile(from: string, to: string, options?: CopyOptions): Promise<DocumentObject> {
    return super.copyFile(from, to, options);
  }
  override copyFolder(from: string, to: string, options?: CopyOptions): Promise<DocumentObject> {
    return super.copyFolder(from, to, options);
  }
  override createFolder(path: string, options?: { tags?: string[] }): Promise<DocumentObject> {
    return super.createFolder(path, options);
  }
  override deleteFile(path: string): Promise<void> {
    return super.deleteFile(path);
  }
  override deleteFolder(path: string): Promise<void> {
    return super.deleteFolder(path);
  }
  override updateMetadata(path: string, change: { path?: string; name?: string; tags?: string[] }, options?: { overwrite?: boolean }): Promise<DocumentObject> {
    return super.updateMetadata(path, change, options);
  }

  /** The same writes, sent as asynchronous requests: each answers `{eventId}` at once. */
  async(options: AsyncOptions = {}): AsyncHubClient {
    return new AsyncHubClient(this.transport, this.authorization, options);
  }

  ping(): Promise<Answer<'/elements/api-v2/hubs/documents/ping', 'get'>> {
    return this.send('GET', `${H}/ping`, {});
  }

  storage(): Promise<Storage> {
    return this.send('GET', `${H}/storage`, {});
  }

  /** A file's bytes as a web ReadableStream (Node: `Readable.fromWeb(stream)`). */
  async download(path: string): Promise<ReadableStream<Uint8Array>> {
    const res = await call(this.transport, this.authorization, 'GET', `${H}/files`, { query: { path } });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** Streams a file into a web WritableStream or a Node Writable (fs.createWriteStream). */
  async downloadTo(path: string, destination: WritableStream<Uint8Array> | NodeWritableLike): Promise<void> {
    const stream = await this.download(path);
    if (typeof (destination as WritableStream).getWriter === 'function') {
      await stream.pipeTo(destination as WritableStream<Uint8Array>);
      return;
    }
    const sink = destination as NodeWritableLike;
    let failure: unknown = null;
    sink.once('error', (e) => {
      failure = e;
    });
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (failure) throw failure;
      if (done) break;
      if (!sink.write(value)) {
        await new Promise<void>((resolve, reject) => {
          sink.once('drain', () => resolve());
          sink.once('error', reject);
        });
      }
    }
    await new Promise<void>((resolve) => sink.end(() => resolve()));
    if (failure) throw failure;
  }

  /** A file's metadata (or a folder's: both answer for whatever the path names). */
  metadata(path: string): Promise<DocumentObject> {
    return this.send('GET', `${H}/files/metadata`, { query: { path } });
  }

  folderMetadata(path: string): Promise<DocumentObject> {
    return this.send('GET', `${H}/folders/metadata`, { query: { path } });
  }

  /** One page of a folder's direct children. */
  list(path = '/', options: ListOptions = {}): Promise<Page<DocumentObject>> {
    return this.page(`${H}/folders/contents`, { path, ...options });
  }

  /** Files and folders under `path` whose names contain `text`, one page. */
  search(text: string, options: ListOptions & { path?: string; startDate?: string; endDate?: string } = {}): Promise<Page<DocumentObject>> {
    return this.page(`${H}/search`, { text, ...options });
  }

  /** A signed link that downloads the file with no credentials (until `expires`). */
  fileLink(path: string): Promise<Link> {
    return this.send('GET', `${H}/files/links`, { query: { path } });
  }

  /** A signed link to a folder's listing. */
  folderLink(path: string): Promise<Link> {
    return this.send('GET', `${H}/folders/links`, { query: { path } });
  }

  revisions(path: string): Promise<Revision[]> {
    return this.send('GET', `${H}/files/revisions`, { query: { path } });
  }

  private async page(route: string, query: Query): Promise<Page<DocumentObject>> {
    const res = await call(this.transport, this.authorization, 'GET', route, { query });
    const total = res.headers.get('elements-total-count');
    return {
      items: (await res.json()) as DocumentObject[],
      nextPage: res.headers.get('elements-next-page-token'),
      total: total === null ? null : Number(total),
    };
  }
}

/** The hub's writes as asynchronous requests (`hub.async({callbackUrl, idempotencyKey})`). */
export class AsyncHubClient extends HubCalls<AsyncAccepted> {
  constructor(
    transport: Transport,
    authorization: string,
    private readonly options: AsyncOptions,
  ) {
    super(transport, authorization);
  }

  protected send<T>(method: string, path: string, options: CallOptions): Promise<AsyncAccepted> {
    const headers: Record<string, string> = { ...options.headers, 'elements-async-request': 'true' };
    if (this.options.callbackUrl) headers['elements-async-callback-url'] = this.options.callbackUrl;
    if (this.options.idempotencyKey) headers['idempotency-key'] = this.options.idempotencyKey;
    return callJson<AsyncAccepted>(this.transport, this.authorization, method, path, { ...options, headers });
  }

  override upload(path: string, source: UploadSource, options?: UploadOptions): Promise<AsyncAccepted> {
    return super.upload(path, source, options) as Promise<AsyncAccepted>;
  }
  override copyFile(from: string, to: string, options?: CopyOptions): Promise<AsyncAccepted> {
    return super.copyFile(from, to, options) as Promise<AsyncAccepted>;
  }
  override copyFolder(from: string, to: string, options?: CopyOptions): Promise<AsyncAccepted> {
    return super.copyFolder(from, to, options) as Promise<AsyncAccepted>;
  }
  override createFolder(path: string, options?: { tags?: string[] }): Promise<AsyncAccepted> {
    return super.createFolder(path, options) as Promise<AsyncAccepted>;
  }
  override deleteFile(path: string): Promise<AsyncAccepted> {
    return super.deleteFile(path) as Promise<AsyncAccepted>;
  }
  override deleteFolder(path: string): Promise<AsyncAccepted> {
    return super.deleteFolder(path) as Promise<AsyncAccepted>;
  }
  override updateMetadata(path: string, change: { path?: string; name?: string; tags?: string[] }, options?: { overwrite?: boolean }): Promise<AsyncAccepted> {
    return super.updateMetadata(path, change, options) as Promise<AsyncAccepted>;
  }

  /** Downloads later: the notification's response names a resultUrl (events/{id}/result). */
  download(path: string): Promise<AsyncAccepted> {
    return this.send('GET', `${H}/files`, { query: { path } });
  }
}
