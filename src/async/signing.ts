/**
 * Webhook signing (DESIGN §1.5). Every notification carries `Content-Type`, an
 * `Elements-Webhook-Id` and the Standard Webhooks `webhook-id` / `webhook-timestamp` (the same id:
 * receivers dedupe on either). When the instance has a signature key, two signatures ride along so
 * that both kinds of receiver can check them:
 *
 * - `Elements-Webhook-Signature: sha256=<base64 HMAC-SHA256(utf8(key), raw body)>` — the original
 *   platform's scheme, kept byte-for-byte so existing receivers keep working. It covers only the
 *   body, so it cannot stop a replay.
 * - `webhook-signature: v1,<base64 HMAC-SHA256(utf8(key), "<id>.<timestamp>.<body>")>` — Standard
 *   Webhooks, which binds id and time so a receiver can reject replays. The `standardwebhooks`
 *   library verifies it when given `base64(utf8(key))` as its secret.
 *
 * Key rotation (issue 24): an instance may sign with several keys at once — its new key and,
 * during the rotation overlap, its previous ones. `webhook-signature` then carries one `v1,`
 * signature per key, space-separated and the new key's first (Standard Webhooks allows this
 * exactly for rotation); `Elements-Webhook-Signature` carries the new key's only, since that
 * scheme has room for one. Verifiers accept a list of keys and pass when any one matches.
 *
 * Pure functions over strings: no clock reads (the caller passes the timestamp) and no I/O.
 * The body must be signed and sent as exactly the same string; re-serialising JSON breaks it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header names in the lower case Node and undici use on the wire. */
export const HEADER = {
  contentType: 'content-type',
  elementsId: 'elements-webhook-id',
  elementsSignature: 'elements-webhook-signature',
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** How far a `webhook-timestamp` may be from now before a standard signature is refused. */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

function hmacBase64(key: string, data: string): string {
  return createHmac('sha256', Buffer.from(key, 'utf8')).update(data, 'utf8').digest('base64');
}

/** The `Elements-Webhook-Signature` value for a body: `sha256=<base64>`. */
export function legacySignature(body: string, key: string): string {
  return `sha256=${hmacBase64(key, body)}`;
}

/** The `webhook-signature` value for a body: `v1,<base64>`. */
export function standardSignature(body: string, key: string, webhookId: string, timestampSeconds: number): string {
  return `v1,${hmacBase64(key, `${webhookId}.${timestampSeconds}.${body}`)}`;
}

/** One key, several keys (current first), or none. Empty keys are ignored. */
export type SigningKeyList = string | readonly string[] | undefined;

function keyList(keys: SigningKeyList): string[] {
  const list = keys === undefined ? [] : typeof keys === 'string' ? [keys] : [...keys];
  return list.filter((k, i) => k !== '' && list.indexOf(k) === i);
}

/**
 * The headers of one notification delivery. `webhookId` is the delivery's unique id (the same
 * for every retry of that notification, so receivers can dedupe); `timestampSeconds` is the
 * attempt's Unix time. `keys` is the instance's current key, or its keys during a rotation
 * overlap (current first). No key means the instance signs nothing: an empty HMAC key would
 * give a signature anyone can forge, and the Standard Webhooks library refuses it.
 */
export function signNotification(
  body: string,
  keys: SigningKeyList,
  webhookId: string,
  timestampSeconds: number,
): Record<string, string> {
  if (!Number.isInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new RangeError('timestampSeconds must be a non-negative integer');
  }
  const headers: Record<string, string> = {
    [HEADER.contentType]: 'application/json',
    [HEADER.elementsId]: webhookId,
    [HEADER.id]: webhookId,
    [HEADER.timestamp]: String(timestampSeconds),
  };
  const list = keyList(keys);
  if (list.length > 0) {
    headers[HEADER.elementsSignature] = legacySignature(body, list[0]);
    headers[HEADER.signature] = list.map((k) => standardSignature(body, k, webhookId, timestampSeconds)).join(' ');
  }
  return headers;
}

/** Headers as Node's `IncomingHttpHeaders`, a fetch-style record, or anything in between. */
export type HeaderBag = Record<string, string | string[] | undefined>;

/** A header's value, matching the name case-insensitively; repeated values joined by ", ". */
export function header(headers: HeaderBag, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(', ') : v;
  }
  return undefined;
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Result per scheme: true = verifies, false = present but wrong (or stale), null = not signed. */
export interface VerifyResult {
  legacy: boolean | null;
  standard: boolean | null;
}

export interface VerifyOptions {
  /** Largest distance between `webhook-timestamp` and now; default 300 s. */
  toleranceSeconds?: number;
  /** The receiver's clock in Unix seconds; default the real clock (tests pin it). */
  nowSeconds?: number;
}

/**
 * Checks both signature schemes of a received notification against `keys` — one key, or the
 * list a receiver accepts while it rotates — the way a receiver should (`ferry listen`, tests).
 * `body` must be the raw bytes as received, decoded as UTF-8. A scheme passes when any key
 * matches (for the standard scheme: any of the space-separated `v1,` signatures); it also fails
 * when id or timestamp is missing or the timestamp is outside the tolerance.
 */
export function verifyNotification(
  body: string,
  headers: HeaderBag,
  keys: string | readonly string[],
  options: VerifyOptions = {},
): VerifyResult {
  const list = keyList(keys);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);

  const legacyHeader = header(headers, HEADER.elementsSignature);
  const legacy =
    legacyHeader === undefined ? null : list.some((key) => constantTimeEqual(legacyHeader.trim(), legacySignature(body, key)));

  const standardHeader = header(headers, HEADER.signature);
  let standard: boolean | null = null;
  if (standardHeader !== undefined) {
    const id = header(headers, HEADER.id);
    const ts = header(headers, HEADER.timestamp);
    const seconds = ts !== undefined && /^\d{1,15}$/.test(ts.trim()) ? Number(ts.trim()) : NaN;
    if (!id || !Number.isFinite(seconds) || Math.abs(now - seconds) > tolerance) {
      standard = false;
    } else {
      const candidates = standardHeader.split(' ').filter(Boolean);
      standard = list.some((key) => {
        const expected = standardSignature(body, key, id, seconds);
        return candidates.some((candidate) => constantTimeEqual(candidate, expected));
      });
    }
  }
  return { legacy, standard };
}
