/**
 * Verifying Ferry's webhooks (`@ferry/client/verify`, importable alone): the notification an
 * asynchronous request sends to its callback URL carries up to two signatures, and a receiver
 * should accept it only when one of them verifies:
 *
 * - `Elements-Webhook-Signature: sha256=<base64 HMAC-SHA256(key, raw body)>` — the original
 *   platform's scheme. It covers the body only, so it cannot stop a replay.
 * - Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64
 *   HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, several space-separated while the sender's key
 *   rotates. It binds id and time, so a stale timestamp is refused.
 *
 * The HMAC key is the instance's `event.notification.signature.key` as UTF-8. Give several keys
 * while you rotate yours: a signature passes when any key matches. Signatures are compared by
 * WebCrypto's HMAC verify (constant time), so this runs unchanged in Node ≥ 20, browsers, Deno
 * and edge runtimes; no Node built-in is imported.
 */

/** Why a webhook was refused. */
export type WebhookFailure =
  /** No signature header of either scheme. */
  | 'missing_signature'
  /** A standard signature without its webhook-id or webhook-timestamp. */
  | 'missing_headers'
  /** webhook-timestamp is further from now than the tolerance (a replay or a skewed clock). */
  | 'stale_timestamp'
  /** Signatures present but none matches any key: a tampered body or the wrong key. */
  | 'invalid_signature'
  /** The signature verifies but the body is not a JSON object. */
  | 'invalid_body'
  /** No usable key was given. */
  | 'no_key';

/** The one error verifyWebhook throws; `reason` says why, `message` says it in words. */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  constructor(
    readonly reason: WebhookFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Headers as Node's `req.headers`, a fetch `Headers`, or a plain record. */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Record<string, string | readonly string[] | undefined>;

/** The body Ferry POSTs when an asynchronous request has run. */
export interface FerryNotification {
  eventId: number;
  instanceId: number;
  notificationId: number;
  eventStatus: 'completed' | 'failed';
  statusCode: number;
  /** The replayed request's answer: its JSON body, or a download's result reference. */
  response: unknown;
}

export interface VerifyWebhookOptions {
  /** Largest distance between webhook-timestamp and now; default 300 s. */
  toleranceSeconds?: number;
  /** The receiver's clock in Unix seconds (tests); default the real clock. */
  nowSeconds?: number;
}

/** Per scheme: 'absent' = not signed that way. */
export interface SignatureCheck {
  elements: 'valid' | 'invalid' | 'absent';
  standard: 'valid' | 'invalid' | 'stale' | 'missing_headers' | 'absent';
}

export const DEFAULT_TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();

function headerOf(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(', ') : (value as string | undefined);
  }
  return undefined;
}

function bytesOf(body: string | Uint8Array): Uint8Array {
  return typeof body === 'string' ? encoder.encode(body) : body;
}

function base64Bytes(text: string): Uint8Array | null {
  try {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function hmacKeys(keys: string | readonly string[]): Promise<CryptoKey[]> {
  const list = (typeof keys === 'string' ? [keys] : [...keys]).filter((k) => typeof k === 'string' && k !== '');
  return Promise.all(
    list.map((k) => globalThis.crypto.subtle.importKey('raw', encoder.encode(k), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])),
  );
}

/** Whether any key's HMAC of `data` is `signature` (WebCrypto compares in constant time). */
async function anyMatches(keys: CryptoKey[], signature: Uint8Array, data: Uint8Array): Promise<boolean> {
  for (const key of keys) {
    if (await globalThis.crypto.subtle.verify('HMAC', key, signature as BufferSource, data as BufferSource)) return true;
  }
  return false;
}

/**
 * Checks each scheme separately (for tools that report both, like `ferry listen`); most
 * receivers want verifyWebhook. `rawBody` must be the bytes as received.
 */
export async function checkWebhookSignatures(
  rawBody: string | Uint8Array,
  headers: WebhookHeaders,
  key: string | readonly string[],
  options: VerifyWebhookOptions = {},
): Promise<SignatureCheck> {
  const keys = await hmacKeys(key);
  const body = bytesOf(rawBody);
  const result: SignatureCheck = { elements: 'absent', standard: 'absent' };

  const elements = headerOf(headers, 'elements-webhook-signature')?.trim();
  if (elements !== undefined) {
    const signature = elements.startsWith('sha256=') ? base64Bytes(elements.slice(7)) : null;
    result.elements = signature && (await anyMatches(keys, signature, body)) ? 'valid' : 'invalid';
  }

  const standard = headerOf(headers, 'webhook-signature');
  if (standard !== undefined) {
    const id = headerOf(headers, 'webhook-id');
    const timestamp = headerOf(headers, 'webhook-timestamp')?.trim();
    const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
    const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
    if (!id || !timestamp || !/^\d{1,15}$/.test(timestamp)) {
      result.standard = 'missing_headers';
    } else if (Math.abs(now - Number(timestamp)) > tolerance) {
      result.standard = 'stale';
    } else {
      const signed = concat(encoder.encode(`${id}.${timestamp}.`), body);
      result.standard = 'invalid';
      for (const candidate of standard.split(' ').filter(Boolean)) {
        const [version, value] = candidate.split(',', 2);
        const signature = version === 'v1' && value ? base64Bytes(value) : null;
        if (signature && (await anyMatches(keys, signature, signed))) {
          result.standard = 'valid';
          break;
        }
      }
    }
  }
  return result;
}

/**
 * Verifies a notification and returns its parsed body. Accepts either scheme; when the standard
 * headers are present they must verify (they are the ones that stop replays), otherwise the
 * Elements signature must. Throws WebhookVerificationError naming the reason.
 *
 *   const notification = await verifyWebhook(rawBody, req.headers, process.env.FERRY_WEBHOOK_KEY);
 */
export async function verifyWebhook<T = FerryNotification>(
  rawBody: string | Uint8Array,
  headers: WebhookHeaders,
  key: string | readonly string[],
  options: VerifyWebhookOptions = {},
): Promise<T> {
  const keys = (typeof key === 'string' ? [key] : [...(key ?? [])]).filter((k) => typeof k === 'string' && k !== '');
  if (keys.length === 0) throw new WebhookVerificationError('no_key', "No signing key given; pass the instance's event.notification.signature.key");
  const check = await checkWebhookSignatures(rawBody, headers, keys, options);
  const verdict = check.standard !== 'absent' ? check.standard : check.elements;
  switch (verdict) {
    case 'absent':
      throw new WebhookVerificationError('missing_signature', 'The request carries no webhook-signature or Elements-Webhook-Signature header');
    case 'missing_headers':
      throw new WebhookVerificationError('missing_headers', 'webhook-signature is present but webhook-id or webhook-timestamp is missing or not a Unix time');
    case 'stale':
      throw new WebhookVerificationError(
        'stale_timestamp',
        `webhook-timestamp is more than ${options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS} s from now: a replayed request or a skewed clock`,
      );
    case 'invalid':
      throw new WebhookVerificationError('invalid_signature', 'No signature matches: the body was changed or the key is wrong');
  }
  const text = typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== 'object') throw new WebhookVerificationError('invalid_body', 'The signed body is not a JSON object');
  return parsed as T;
}
