/**
 * Signature key rotation (issue 24): which keys an instance's webhooks are signed with.
 *
 * When `event.notification.signature.key` changes, the previous key is not dropped: it is kept
 * (encrypted, beside the instance) until `FERRY_KEY_ROTATION_OVERLAP` has passed, and every
 * webhook sent meanwhile carries a Standard Webhooks `v1,` signature for the new key first and
 * for each still-valid previous key after it. A receiver can so switch to the new key whenever
 * it likes within the overlap, as with Svix. Several rotations in a row keep each previous key
 * for its own overlap. Removing the key (empty value) signs nothing and forgets the old keys.
 *
 * The keys are read when a delivery is sent (not when it was queued), so retries and
 * redeliveries carry the keys current at that moment. Senders cache them briefly; a change
 * made on this process is announced on a BroadcastChannel (which reaches the runner thread
 * too), so the cache never serves a replaced key here. Other nodes (PostgreSQL) see the change
 * within the sender's cache time.
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { RetiredSignatureKey } from '../store/store.js';

/** The configuration key holding an instance's current signature key. */
export const SIGNATURE_KEY = 'event.notification.signature.key';

/** Most previous keys kept at once; older ones are dropped even inside their overlap. */
export const MAX_RETIRED_KEYS = 5;

/**
 * The retired-key list after the signature key changed from `previous` to `next` at `now`.
 * `seal` encrypts a key for storage; `open` decrypts a stored one (to compare). Returns
 * undefined when nothing changes (same key), so the caller leaves the stored list alone.
 */
export function rotateKeys(
  previous: string | undefined,
  next: string | undefined,
  retired: RetiredSignatureKey[],
  now: Date,
  overlapMs: number,
  crypto: { seal(key: string): string; open(sealed: string): string },
): RetiredSignatureKey[] | undefined {
  if ((previous ?? '') === (next ?? '')) return undefined;
  if (!next) return []; // no key: the instance signs nothing, old keys included
  const live = retired.filter((k) => k.until.getTime() > now.getTime() && crypto.open(k.key) !== next);
  if (previous && overlapMs > 0) live.unshift({ key: crypto.seal(previous), until: new Date(now.getTime() + overlapMs) });
  return live.slice(0, MAX_RETIRED_KEYS);
}

/** An instance's keys in signing order (current first), as read by a sender. */
export interface SigningKeys {
  current: string | undefined;
  /** Clear previous keys with the end of their overlap. */
  retired: { key: string; until: number }[];
}

/** The keys to sign with at `nowMs`: the current one, then previous keys still in their overlap. */
export function keysAt(keys: SigningKeys, nowMs: number): string[] {
  if (!keys.current) return [];
  const out = [keys.current];
  for (const k of keys.retired) if (k.until > nowMs && !out.includes(k.key)) out.push(k.key);
  return out;
}

const CHANNEL = 'ferry.instance-signature-keys';

/** Tells every sender in this process (all threads) that an instance's keys changed. */
export function announceKeyChange(instanceId: number): void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage(instanceId);
  channel.close();
}

/** Calls `changed(instanceId)` on every announced change; returns the unsubscribe function. */
export function onKeyChange(changed: (instanceId: number) => void): () => void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (event) => {
    const id = (event as { data?: unknown }).data;
    if (typeof id === 'number') changed(id);
  };
  (channel as unknown as { unref?: () => void }).unref?.();
  return () => channel.close();
}
