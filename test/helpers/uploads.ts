/**
 * An upload a test holds open: a multipart `POST /hubs/documents/files` that sends the start of
 * its file and then waits for the test — to complete it, or to end the request inside the file
 * part, as a client that gives up mid-file does (Ferry answers that one 400). Written on a raw
 * socket request because fetch cannot stop a body half-way on cue.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

export interface HeldUpload {
  /** The status and body Ferry answers. */
  answer: Promise<{ status: number; body: string }>;
  /** Sends the rest and the closing boundary (`complete`), or ends the request mid-file. */
  finish(complete: boolean): void;
}

/** Starts uploading `first` + `rest` to instance path `p` and sends `first` only. */
export function holdUpload(base: string, auth: string, p: string, first: Buffer, rest: Buffer): HeldUpload {
  const boundary = `----ferry-held-${randomBytes(6).toString('hex')}`;
  const url = new URL(`${base}/hubs/documents/files?path=${encodeURIComponent(p)}`);
  const req = http.request(url, { method: 'POST', headers: { authorization: auth, 'content-type': `multipart/form-data; boundary=${boundary}` } });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${path.basename(p)}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  req.write(first);
  return {
    answer,
    finish(complete: boolean) {
      if (complete) req.end(Buffer.concat([rest, Buffer.from(`\r\n--${boundary}--\r\n`)]));
      else req.end();
    },
  };
}
