/**
 * `ferry listen`: a tiny webhook receiver for people trying Ferry out or debugging a callback
 * URL. It accepts a POST on any path, answers 200 `{"received":true}` at once, and prints what
 * arrived: time, delivery id, the event's id/status/statusCode, whether each signature scheme
 * verifies against `--signature-key` (repeatable: while a key rotates, give the old and the new
 * one), and the pretty-printed body.
 *
 * It is a development tool, not a production receiver: it keeps nothing, dedupes nothing, and
 * binds to 127.0.0.1 by default. Ferry refuses loopback callback URLs unless
 * FERRY_EGRESS_ALLOW lets them through (e.g. `127.0.0.1/32,localhost`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HEADER, header, type HeaderBag } from './async/signing.js';
// The client package's verifier (@ferry/client/verify), compiled with Ferry from its source, so
// the tool and the library receivers install can never disagree about a signature.
import { checkWebhookSignatures, DEFAULT_TOLERANCE_SECONDS, type SignatureCheck } from '../packages/client/src/verify.js';

export interface ListenOptions {
  /** 0 picks a free port (tests). */
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * The instance's `event.notification.signature.key`, or several keys while a key rotates (a
   * signature passes when any of them matches); without one, signatures are not checked.
   */
  signatureKey?: string | string[];
  /** Where lines go; default stdout. */
  out?: (line: string) => void;
}

export interface Listener {
  port: number;
  close(): Promise<void>;
}

// A notification is a JSON document about one event; anything bigger is not one of Ferry's.
const MAX_BODY_BYTES = 16 * 1024 * 1024;

function signatureLine(scheme: string, present: boolean, verdict: boolean | null, haveKey: boolean): string {
  if (!present) return `signature ${scheme}: not signed`;
  if (!haveKey) return `signature ${scheme}: present, not checked (no --signature-key given)`;
  return `signature ${scheme}: ${verdict ? '✓ valid' : '✗ INVALID'}`;
}

/** The lines printed for one received notification. */
export async function describeNotification(
  body: string,
  headers: HeaderBag,
  signatureKey: string | string[] | undefined,
  at: Date,
): Promise<string[]> {
  const keys = (typeof signatureKey === 'string' ? [signatureKey] : (signatureKey ?? [])).filter(Boolean);
  const haveKey = keys.length > 0;
  const lines = [`── ${at.toISOString()}  Elements-Webhook-Id: ${header(headers, HEADER.elementsId) ?? '(none)'}`];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (parsed !== null && typeof parsed === 'object') {
    const n = parsed as Record<string, unknown>;
    const show = (v: unknown) => (v === undefined ? '-' : JSON.stringify(v));
    lines.push(`eventId: ${show(n.eventId)}  eventStatus: ${show(n.eventStatus)}  statusCode: ${show(n.statusCode)}`);
  }
  const verdict: SignatureCheck = haveKey
    ? await checkWebhookSignatures(body, headers, keys, { nowSeconds: Math.floor(at.getTime() / 1000) })
    : { elements: 'absent', standard: 'absent' };
  lines.push(
    signatureLine(
      'sha256=… (Elements-Webhook-Signature)',
      header(headers, HEADER.elementsSignature) !== undefined,
      verdict.elements === 'valid',
      haveKey,
    ),
  );
  let standardLine = signatureLine('v1,… (webhook-signature)', header(headers, HEADER.signature) !== undefined, verdict.standard === 'valid', haveKey);
  if (verdict.standard === 'stale') {
    standardLine += ` (webhook-timestamp is more than ${DEFAULT_TOLERANCE_SECONDS} s away: a replay or a skewed clock)`;
  }
  lines.push(standardLine);
  lines.push(parsed === undefined ? `body (not JSON, ${Buffer.byteLength(body)} bytes): ${body.slice(0, 2000)}` : JSON.stringify(parsed, null, 2));
  return lines;
}

/** Starts the receiver; resolves once it is listening. */
export async function listen(options: ListenOptions): Promise<Listener> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const server = http.createServer((req, res) => {
    const reply = (status: number, payload: unknown, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...extra });
      res.end(JSON.stringify(payload));
    };
    if (req.method !== 'POST') {
      reply(405, { message: 'ferry listen accepts POST only.' }, { allow: 'POST' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reply(413, { message: `body larger than ${MAX_BODY_BYTES} bytes` }, { connection: 'close' });
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      describeNotification(body, req.headers, options.signatureKey, new Date()).then(
        (lines) => {
          for (const line of lines) out(line);
          reply(200, { received: true });
        },
        (e: unknown) => {
          out(`could not check the notification: ${(e as Error)?.message ?? e}`);
          reply(200, { received: true });
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // idle keep-alive sockets would otherwise hold close() open
      }),
  };
}
