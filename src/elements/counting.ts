/**
 * Byte counting for job progress (issue 16): a stream that passes `source` through unchanged and
 * reports the length of each chunk. Used where an element streams bytes itself (SFTP copies);
 * either end failing or closing early ends the other, so nothing stays open.
 */
import { Transform, pipeline, type Readable } from 'node:stream';

export function countingBytes(source: Readable, onBytes: (bytes: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  pipeline(source, counter, () => undefined);
  return counter;
}
