/**
 * Keeps a keep-alive connection usable after a request is answered before its body was read —
 * a 401/403/429 from the auth hook, a 404, a 409 or 400 from a route that refused before
 * streaming, a 413 or 415 from a parser. Left alone, the unread bytes stay on the connection
 * (or a half-consumed multipart parser holds them), and the client's next request on it fails
 * with ECONNRESET.
 *
 * The rule (the one Go's net/http follows): a body announcing at most `UNREAD_BODY_DRAIN_LIMIT`
 * bytes is read and discarded, and the connection is kept; a larger or unannounced (chunked)
 * body is answered with `Connection: close`, so the client opens a new connection for its next
 * request — while the server still reads and discards for a short while (a "lingering close"),
 * so the client receives the answer instead of a reset. Nothing here changes the answer itself.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { announcesBody } from './body.js';

/** Largest remaining body (bytes) read and discarded to keep a connection alive (Go uses 256 KiB). */
export const UNREAD_BODY_DRAIN_LIMIT = 256 * 1024;
/** How long a connection answered with `Connection: close` keeps discarding before it is cut. */
export const LINGER_MS = 2000;

/** Whether the request still has body bytes on the connection that no one will read. */
function hasUnreadBody(request: FastifyRequest): boolean {
  const raw = request.raw;
  // Replayed async jobs are injected requests: no connection behind them.
  if (request.internal || !raw.socket || typeof (raw.socket as { destroy?: unknown }).destroy !== 'function') return false;
  return !raw.complete && !raw.destroyed && announcesBody(raw.headers);
}

/** Reads and discards the rest of a body; `budget` bytes at most, then cuts the connection. */
function discard(raw: IncomingMessage, budget: number): void {
  // A multipart or async-capture reader may still be attached (and paused): take the stream back.
  raw.unpipe();
  raw.removeAllListeners('data');
  raw.removeAllListeners('readable');
  let seen = 0;
  raw.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > budget) raw.socket?.destroy();
  });
  raw.on('error', () => {});
  raw.resume();
}

/**
 * Node closes a `Connection: close` socket fully as soon as the answer is written; bytes of the
 * body still arriving then make the kernel reset the connection, and a client may lose the
 * answer with it. Instead the server only half-closes (FIN after the answer), goes on reading
 * and discarding, and closes when the client does — or after LINGER_MS.
 */
function lingerOnClose(socket: Socket, res: ServerResponse): void {
  (socket as Socket & { destroySoon(): void }).destroySoon = function halfClose(this: Socket) {
    this.end();
  };
  res.once('finish', () => {
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('end', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer));
  });
}

/** Registers the hook on the root app: it sees every answer, errors and 404s included. */
export function settleUnreadBodies(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (!hasUnreadBody(request)) return payload;
    const raw = request.raw;
    const declared = Number(raw.headers['content-length']);
    const small = raw.headers['transfer-encoding'] === undefined && Number.isFinite(declared) && declared <= UNREAD_BODY_DRAIN_LIMIT;
    if (small) {
      discard(raw, UNREAD_BODY_DRAIN_LIMIT);
      return payload;
    }
    reply.header('Connection', 'close');
    discard(raw, Number.POSITIVE_INFINITY);
    lingerOnClose(raw.socket as Socket, reply.raw);
    return payload;
  });
}
