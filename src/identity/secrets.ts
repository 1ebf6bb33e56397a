/**
 * Secrets Ferry hands out (user, organization and instance tokens): random 32 bytes, shown once,
 * stored only as SHA-256 hashes. SHA-256 (not a slow password hash) is right here because the
 * secrets are random and long: there is nothing to brute-force.
 */
import crypto from 'node:crypto';

/** A new random secret: 32 bytes, base64url (43 characters). */
export function newSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** The stored form of a secret. */
export function hashSecret(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * Constant-time comparison of two strings. Only whether the lengths differ can be learnt from
 * the time taken, and every secret Ferry compares has a fixed, public length.
 */
export function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ba.length !== bb.length) return false;
  return crypto.timingSafeEqual(ba, bb);
}
