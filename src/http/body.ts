import type { IncomingHttpHeaders } from 'node:http';

/**
 * Whether a request announces a body (HTTP/1.1 framing: Transfer-Encoding, or a non-zero
 * Content-Length). One that does not has none to wait for or to read.
 */
export function announcesBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
