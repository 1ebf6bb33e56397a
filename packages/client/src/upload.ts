/**
 * Upload bodies: multipart/form-data with the file in a part named "file". A Blob, Buffer or
 * Uint8Array goes through FormData (every runtime); a stream (a web ReadableStream or anything
 * async-iterable, such as a Node Readable) is framed by hand and streamed, never buffered.
 */

import type { RequestBody } from './http.js';

export type UploadSource = Blob | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

function isStream(source: UploadSource): source is ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string> {
  return typeof (source as ReadableStream).getReader === 'function' || typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

async function* chunksOf(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  if (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    for await (const chunk of source as AsyncIterable<Uint8Array | string>) yield typeof chunk === 'string' ? encoder.encode(chunk) : chunk;
    return;
  }
  const reader = (source as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * The body and its Content-Type (FormData sets its own). `fields` are text parts sent before
 * the file (a bulk manifest's `metaData`).
 */
export function uploadBody(
  source: UploadSource,
  fileName: string,
  contentType = 'application/octet-stream',
  fields: Record<string, string> = {},
): { body: RequestBody; contentType?: string } {
  if (!isStream(source)) {
    const blob = source instanceof Blob ? source : new Blob([source as BlobPart], { type: contentType });
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', blob, fileName);
    return { body: form };
  }
  const boundary = `ferry-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
  const encoder = new TextEncoder();
  const safeName = fileName.replace(/["\r\n\\]/g, '_');
  const fieldParts = Object.entries(fields)
    .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name.replace(/["\r\n\\]/g, '_')}"\r\n\r\n${value}\r\n`)
    .join('');
  const head = encoder.encode(
    `${fieldParts}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${safeName}"\r\nContent-Type: ${contentType}\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const chunks = chunksOf(source);
  let started = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(head);
        return;
      }
      const next = await chunks.next();
      if (next.done) {
        controller.enqueue(tail);
        controller.close();
      } else {
        controller.enqueue(next.value);
      }
    },
    async cancel(reason) {
      await chunks.return?.(reason);
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}
