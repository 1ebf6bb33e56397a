/**
 * Worker-thread body of the localfs tree pool (tree-pool.ts): runs the blocking primitives of
 * tree.ts one request at a time and answers each `{id}` with its result, or with the errno
 * `code` of the failure (for reads also `at`: the folder, relative to the one read, where it
 * happened). Only codes travel back: Node's messages carry host paths, which must not reach
 * clients.
 */
import { parentPort } from 'node:worker_threads';
import { copyFilesSync, copyRegularFileSync, startFolderCopySync, TreeReader, type ErrorAt, type TreeRows } from './tree.js';

/** A request from the main thread. `read`/`more`/`end` share a `reader` id chosen by the pool. */
export type TreeRequest =
  | { op: 'startCopy'; id: number; from: string; to: string; copyUpTo: number; resume: boolean; tag: string; measure: boolean }
  | { op: 'copyFiles'; id: number; from: string; to: string; names: string[]; tag: string }
  | { op: 'copyFile'; id: number; source: string; target: string; tag: string }
  | { op: 'read'; id: number; reader: number; root: string; recursive: boolean; limit: number }
  | { op: 'more'; id: number; reader: number; limit: number }
  | { op: 'end'; reader: number };

/** The worker's answer; `code` is set when the request failed. */
export interface TreeReply {
  id: number;
  code?: string;
  /** For a failed read: the folder (relative to the root read) that failed. */
  at?: string;
  /** startCopy: what is left to copy into the new folder. */
  folders?: string[];
  files?: string[];
  /** startCopy with `measure`: the bytes of all the folder's files to copy (those copied at once included). */
  listedBytes?: number;
  /** startCopy/copyFiles/copyFile: files and bytes copied by this request (progress). */
  copied?: number;
  bytes?: number;
  /** read/more: the next rows; `done` once the reader is finished (and forgotten). */
  rows?: TreeRows;
  done?: boolean;
}

/** Open readers by id: a walk spans several requests. */
const readers = new Map<number, TreeReader>();

function handle(request: TreeRequest): TreeReply | null {
  switch (request.op) {
    case 'startCopy': {
      const { folders, files, bytes: listedBytes } = startFolderCopySync(request.from, request.to, request.resume, request.tag, request.measure);
      // A few files are copied at once: a message per small folder would cost more.
      if (files.length > request.copyUpTo) return { id: request.id, folders, files, listedBytes };
      const bytes = copyFilesSync(request.from, request.to, files, request.tag);
      return { id: request.id, folders, files: [], copied: files.length, bytes, listedBytes };
    }
    case 'copyFiles': {
      const bytes = copyFilesSync(request.from, request.to, request.names, request.tag);
      return { id: request.id, copied: request.names.length, bytes };
    }
    case 'copyFile': {
      const bytes = copyRegularFileSync(request.source, request.target, request.tag);
      return { id: request.id, copied: 1, bytes };
    }
    case 'read':
    case 'more': {
      let reader = readers.get(request.reader);
      if (request.op === 'read') {
        reader = new TreeReader(request.root, request.recursive);
        readers.set(request.reader, reader);
      }
      if (!reader) return { id: request.id, rows: { count: 0, paths: '', numbers: new Float64Array(0) }, done: true };
      let rows: TreeRows;
      try {
        rows = reader.next(request.limit);
      } catch (e) {
        readers.delete(request.reader);
        reader.close();
        throw e;
      }
      const done = rows.count < request.limit;
      if (done) {
        readers.delete(request.reader);
        reader.close();
      }
      return { id: request.id, rows, done };
    }
    case 'end':
      readers.get(request.reader)?.close();
      readers.delete(request.reader);
      return null;
  }
}

parentPort?.on('message', (request: TreeRequest) => {
  let reply: TreeReply | null;
  try {
    reply = handle(request);
  } catch (e) {
    const { code, at } = e as ErrorAt;
    reply = { id: (request as { id: number }).id, code: typeof code === 'string' ? code : 'EUNKNOWN', at };
  }
  // A read's numbers are handed over, not copied.
  if (reply) parentPort?.postMessage(reply, reply.rows ? [reply.rows.numbers.buffer as ArrayBuffer] : []);
});
