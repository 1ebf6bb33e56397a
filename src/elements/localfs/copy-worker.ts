/**
 * Worker-thread body of the folder copy (see copy-pool.ts): receives `{id, from, to}`, runs the
 * blocking `copyTreeSync`, answers `{id}` or `{id, code}` with the errno code of the failure.
 * Only the code travels back: Node's messages carry host paths, which must not reach clients.
 */
import { parentPort } from 'node:worker_threads';
import { copyTreeSync } from './tree.js';

/** A copy request from the main thread. */
export interface CopyRequest {
  id: number;
  from: string;
  to: string;
}

/** The worker's answer; `code` is set when the copy failed. */
export interface CopyReply {
  id: number;
  code?: string;
}

parentPort?.on('message', ({ id, from, to }: CopyRequest) => {
  let reply: CopyReply = { id };
  try {
    copyTreeSync(from, to);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    reply = { id, code: typeof code === 'string' ? code : 'EUNKNOWN' };
  }
  parentPort?.postMessage(reply);
});
