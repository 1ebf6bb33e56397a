/**
 * Test harness for the amazons3 element: an in-process s3rver (a real S3 HTTP server over a
 * temp folder) on 127.0.0.1 with an ephemeral port, fronted by a small counting HTTP proxy.
 *
 * The proxy is what elements talk to. It forwards every request unchanged and records, per
 * request, the method, key, copy source and body sizes in both directions, so a test can prove
 * that a copy was server-side: object bytes uploaded (PutObject/UploadPart bodies) and
 * downloaded (GetObject bodies) stay at zero while CopyObject requests flow.
 *
 * s3rver 3.7 on Node >= 17 (OpenSSL 3): its ListObjectsV2 continuation tokens are encrypted with
 * single DES, which OpenSSL 3 only offers in its legacy provider, so any listing longer than one
 * page fails with InternalError. `allowDesForS3rver` fills that gap in this test process with
 * two-key triple DES using the key twice, which is mathematically the same cipher
 * (E_K(D_K(E_K(x))) = E_K(x)) and is in OpenSSL 3's default provider. Nothing else is touched.
 *
 * s3rver accepts the credentials S3RVER/S3RVER. It checks the access key id (an unknown one
 * answers InvalidAccessKeyId) but does not verify SigV4 signatures, so a wrong *secret* key is
 * not detected by it.
 */
import crypto, { type BinaryLike, type CipherKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transform, pipeline } from 'node:stream';

/** One S3 API request as the counting proxy saw it. */
export interface S3Request {
  method: string;
  /** Path-style URL path, decoded: "/bucket/key". */
  path: string;
  query: string;
  /** The decoded `x-amz-copy-source` header of a server-side copy. */
  copySource?: string;
  status: number;
  requestBytes: number;
  responseBytes: number;
}

/** Object bytes that crossed the S3 API, and the request log. */
export interface S3Traffic {
  /** Bodies of PutObject / UploadPart requests. */
  objectBytesUp: number;
  /** Bodies of GetObject responses. */
  objectBytesDown: number;
  requests: S3Request[];
}

/** A running S3 server for tests. */
export interface S3TestServer {
  /** Endpoint of the counting proxy (use this one). */
  endpoint: string;
  /** Endpoint of s3rver itself, bypassing the counters. */
  directEndpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  /** A ready amazons3 element configuration for `bucket` through the proxy. */
  config: Record<string, string>;
  /** Creates another empty bucket and returns its name. */
  newBucket(): Promise<string>;
  /** Configuration like `config` for another bucket. */
  configFor(bucket: string): Record<string, string>;
  /** Traffic counted since start or the last reset. */
  traffic(): S3Traffic;
  resetTraffic(): void;
  stop(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: http.Server;
  store: { putBucket(name: string): Promise<unknown> };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';

let desPatched = false;

/** Makes `crypto.createCipheriv('des', ...)` work under OpenSSL 3 (see the module header). */
function allowDesForS3rver(): void {
  if (desPatched) return;
  desPatched = true;
  try {
    crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return; // the legacy provider is loaded: nothing to do
  } catch {
    // fall through and install the equivalent cipher
  }
  const asTripleDes = (algorithm: string, key: CipherKey): [string, CipherKey] =>
    algorithm.toLowerCase() === 'des' && Buffer.isBuffer(key) && key.length === 8
      ? ['des-ede-cbc', Buffer.concat([key, key])]
      : [algorithm, key];
  const { createCipheriv, createDecipheriv } = crypto;
  const patchable = crypto as unknown as Record<string, unknown>;
  patchable.createCipheriv = (algorithm: string, key: CipherKey, iv: BinaryLike | null, options?: unknown) =>
    (createCipheriv as (...a: unknown[]) => unknown)(...asTripleDes(algorithm, key), iv, options);
  patchable.createDecipheriv = (algorithm: string, key: CipherKey, iv: BinaryLike | null, options?: unknown) =>
    (createDecipheriv as (...a: unknown[]) => unknown)(...asTripleDes(algorithm, key), iv, options);
}

/** Counts the bytes flowing through without touching them. */
function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}

function isObjectRequest(urlPath: string, query: string): boolean {
  // "/bucket/key..." with no sub-resource query (?uploads, ?delete, ?list-type...) other than
  // the multipart upload's own partNumber/uploadId.
  const segments = urlPath.split('/').filter((s) => s !== '');
  if (segments.length < 2) return false;
  const params = new URLSearchParams(query);
  for (const name of params.keys()) {
    if (name !== 'partNumber' && name !== 'uploadId' && !name.startsWith('x-id')) return false;
  }
  return true;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function startProxy(target: number, record: (r: S3Request) => void): Promise<{ server: http.Server; agent: http.Agent }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const entry: S3Request = {
      method: req.method ?? 'GET',
      path: decode(url.pathname),
      query: url.search.slice(1),
      copySource: typeof req.headers['x-amz-copy-source'] === 'string' ? decode(req.headers['x-amz-copy-source']) : undefined,
      status: 0,
      requestBytes: 0,
      responseBytes: 0,
    };
    const upstream = http.request(
      { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent },
      (upstreamRes) => {
        entry.status = upstreamRes.statusCode ?? 0;
        res.writeHead(entry.status, upstreamRes.headers);
        pipeline(upstreamRes, counter((n) => (entry.responseBytes += n)), res, () => record(entry));
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
    pipeline(req, counter((n) => (entry.requestBytes += n)), upstream, () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, agent }));
  });
}

/**
 * Starts s3rver with one bucket behind a counting proxy. Returns null (and logs why) only when
 * s3rver cannot start.
 */
export async function startS3(): Promise<S3TestServer | null> {
  let S3rver: S3rverConstructor;
  let directory: string | undefined;
  let s3rver: S3rverInstance;
  let address: AddressInfo;
  const bucket = 'ferry-test';
  try {
    allowDesForS3rver();
    S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
    directory = await mkdtemp(path.join(os.tmpdir(), 'ferry-s3rver-'));
    s3rver = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory,
      configureBuckets: [{ name: bucket }],
    });
    address = await s3rver.run();
  } catch (error) {
    console.warn(`s3rver could not start: ${(error as Error).message}`);
    if (directory) await rm(directory, { recursive: true, force: true });
    return null;
  }

  let traffic: S3Traffic = { objectBytesUp: 0, objectBytesDown: 0, requests: [] };
  const record = (r: S3Request): void => {
    traffic.requests.push(r);
    if (!isObjectRequest(r.path, r.query)) return;
    if (r.method === 'PUT' && r.copySource === undefined) traffic.objectBytesUp += r.requestBytes;
    if (r.method === 'GET') traffic.objectBytesDown += r.responseBytes;
  };
  const { server: proxy, agent } = await startProxy(address.port, record);
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const configFor = (name: string): Record<string, string> => ({
    'filemanagement.provider.access_key': ACCESS_KEY,
    'filemanagement.provider.secret_key': SECRET_KEY,
    'filemanagement.provider.bucket_name': name,
    'filemanagement.provider.region_name': 'us-east-1',
    'filemanagement.provider.endpoint': endpoint,
  });
  let buckets = 0;

  return {
    endpoint,
    directEndpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    accessKey: ACCESS_KEY,
    secretKey: SECRET_KEY,
    config: configFor(bucket),
    configFor,
    async newBucket() {
      buckets += 1;
      const name = `ferry-test-${buckets}`;
      await s3rver.store.putBucket(name);
      return name;
    },
    traffic: () => ({ ...traffic, requests: [...traffic.requests] }),
    resetTraffic() {
      traffic = { objectBytesUp: 0, objectBytesDown: 0, requests: [] };
    },
    async stop() {
      agent.destroy();
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      s3rver.httpServer?.closeAllConnections();
      await s3rver.close();
      await rm(directory as string, { recursive: true, force: true });
    },
  };
}
