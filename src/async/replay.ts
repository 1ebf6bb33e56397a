/**
 * Replaying a job's captured request through the node's Fastify routes without mock HTTP
 * objects (issue 19). `app.inject` (light-my-request) builds a full `http.ServerResponse` per
 * call — an outgoing message wired to a null socket, whose `writeHead` formats the raw HTTP
 * header block nobody reads — and copies and re-serialises the headers when it ends. A replay
 * needs none of that: it wants the status, the headers and the body bytes.
 *
 * So the replay hands Fastify's router (`app.routing`, the same handler `inject` calls) a
 * request that is a plain Readable carrying the captured method, URL, headers and body, and a
 * response that is a plain Writable collecting what the route writes. Everything between —
 * hooks, authentication, validation, the route, serialisation, error handlers — runs exactly
 * as for a synchronous call, so a job answers what the route answers.
 *
 * The request's headers get what `inject` would add: `host` (a replay has none: it is never
 * stored) and `content-length` for a body; a body that is a stream (an upload's spool file)
 * flows through `pipe`. As on a real connection, a HEAD request and a 204 or 304 answer carry
 * no body bytes. A response destroyed before it ended rejects, as `inject` does.
 */
import { Readable, Writable } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface ReplayInput {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: Buffer | NodeJS.ReadableStream;
}

export interface ReplayOutput {
  statusCode: number;
  headers: Record<string, string | number | string[] | undefined>;
  rawPayload: Buffer;
}

/** Fastify's router: `(req, res)`, as `app.routing` exposes it. */
export type Routing = (req: IncomingMessage, res: ServerResponse) => void;

/** The socket every replayed request reports: loopback, not encrypted, never closed by a route. */
class ReplaySocket extends EventEmitter {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 0;
  readonly localAddress = '127.0.0.1';
  readonly encrypted = false;
  readonly readable = true;
  readonly writable = true;
  destroyed = false;
  destroy(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
}

class ReplayRequest extends Readable {
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  aborted = false;
  complete = false;
  readonly socket = new ReplaySocket();
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  private body: Buffer | null;
  /** With a stream body: lets it flow again once the route reads on. */
  private resumeSource: (() => void) | null = null;

  constructor(input: ReplayInput) {
    super({ autoDestroy: false });
    this.method = input.method.toUpperCase();
    this.url = input.url;
    this.headers = input.headers;
    this.headers.host ??= 'localhost:80';
    this.body = Buffer.isBuffer(input.payload) ? input.payload : null;
    this.complete = !input.payload;
    if (this.body && this.headers['content-length'] === undefined) this.headers['content-length'] = String(this.body.length);
    const stream = input.payload && !Buffer.isBuffer(input.payload) ? (input.payload as Readable) : null;
    if (stream) {
      stream.on('data', (chunk: Buffer) => {
        if (!this.push(chunk)) stream.pause();
      });
      stream.once('end', () => this.finishBody());
      stream.once('error', (e) => this.destroy(e));
      this.resumeSource = () => stream.resume();
    }
  }

  get connection(): ReplaySocket {
    return this.socket;
  }

  get rawHeaders(): string[] {
    return Object.entries(this.headers).flat();
  }

  override _read(): void {
    if (this.resumeSource) {
      this.resumeSource();
      return;
    }
    if (this.body && this.body.length > 0) this.push(this.body);
    this.body = null;
    this.finishBody();
  }

  private finishBody(): void {
    this.complete = true;
    this.push(null);
  }
}

class ReplayResponse extends Writable {
  statusCode = 200;
  headersSent = false;
  readonly socket = null;
  private readonly fields: Record<string, string | number | string[]> = Object.create(null);
  private readonly chunks: Buffer[] = [];

  constructor(readonly req: ReplayRequest) {
    super();
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    this.fields[name.toLowerCase()] = Array.isArray(value) ? [...value] : (value as string | number);
    return this;
  }
  getHeader(name: string): string | number | string[] | undefined {
    return this.fields[name.toLowerCase()];
  }
  getHeaders(): Record<string, string | number | string[]> {
    return { ...this.fields };
  }
  hasHeader(name: string): boolean {
    return name.toLowerCase() in this.fields;
  }
  removeHeader(name: string): void {
    delete this.fields[name.toLowerCase()];
  }
  /** As Fastify calls it: the status and, optionally, a headers object. */
  writeHead(statusCode: number, headers?: Record<string, string | number | readonly string[]>): this {
    this.statusCode = statusCode;
    for (const name in headers) this.setHeader(name, headers[name]);
    this.headersSent = true;
    return this;
  }
  writeEarlyHints(): void {}
  addTrailers(): void {}
  setTimeout(): this {
    return this;
  }
  /** Bytes a real connection would carry: none for HEAD, 204 and 304. */
  private get hasBody(): boolean {
    return this.req.method !== 'HEAD' && this.statusCode !== 204 && this.statusCode !== 304;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (e?: Error | null) => void): void {
    this.headersSent = true;
    if (this.hasBody) this.chunks.push(chunk);
    done();
  }

  override _final(done: (e?: Error | null) => void): void {
    this.headersSent = true;
    done();
  }

  output(): ReplayOutput {
    return { statusCode: this.statusCode, headers: this.getHeaders(), rawPayload: this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks) };
  }
}

/** Runs one request through `routing` and resolves with what it answered. */
export function replayRequest(routing: Routing, input: ReplayInput): Promise<ReplayOutput> {
  const req = new ReplayRequest(input);
  const res = new ReplayResponse(req);
  return new Promise((resolve, reject) => {
    let settled = false;
    res.once('finish', () => {
      settled = true;
      resolve(res.output());
    });
    res.once('close', () => {
      if (settled) return;
      settled = true;
      const e = Object.assign(new Error('response destroyed before completion'), { code: 'REPLAY_ECONNRESET' });
      reject(e);
    });
    res.once('error', () => {
      // 'close' follows and settles.
    });
    routing(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  });
}
