/**
 * Ferry-signed, expiring download links (`cloudElementsLink`). A link carries the instance, the
 * path and the expiry, authenticated with HMAC-SHA256 under a key derived from the master key,
 * so it needs no stored state and no Authorization header, and cannot be altered or extended.
 */
import crypto from 'node:crypto';
import { forbidden, invalid } from '../errors.js';
import type { MasterKey } from '../identity/crypto.js';

export class LinkSigner {
  private readonly key: Buffer;

  constructor(masterKey: MasterKey) {
    this.key = masterKey.derive('ferry-download-links-v1');
  }

  sign(organizationId: number, instanceId: number, path: string, expires: Date): string {
    const payload = Buffer.from(JSON.stringify({ o: organizationId, i: instanceId, p: path, e: Math.floor(expires.getTime() / 1000) })).toString(
      'base64url',
    );
    return `${payload}.${this.mac(payload)}`;
  }

  /** The instance and path of a valid, unexpired link; throws otherwise. */
  verify(token: string, now = new Date()): { organizationId: number; instanceId: number; path: string } {
    const [payload, mac] = token.split('.');
    if (!payload || !mac) throw invalid('Malformed link token; use the cloudElementsLink Ferry returned');
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) {
      throw forbidden('This link is not valid; request a new one from GET /hubs/documents/files/links');
    }
    const { o, i, p, e } = JSON.parse(Buffer.from(payload, 'base64url').toString());
    if (e * 1000 < now.getTime()) throw forbidden('This link has expired; request a new one from GET /hubs/documents/files/links');
    return { organizationId: o, instanceId: i, path: p };
  }

  private mac(payload: string): string {
    return crypto.createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}
