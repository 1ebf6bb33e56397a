/**
 * Turning what ssh2 reports into Ferry's domain errors, by structure, never by message text:
 * - an SFTP status reply carries a numeric `code` (SSH_FX_*, draft-ietf-secsh-filexfer-02 §7);
 * - a failure of the connection itself (socket closed, server restarted) has no numeric code;
 *   the pool uses `isConnectionLost` to discard that connection and maybe retry;
 * - connection set-up errors carry ssh2's `level` ('client-authentication', 'client-timeout',
 *   'client-socket') and, for sockets, Node's `code` (ECONNREFUSED...).
 * Messages name instance paths (never the server's absolute ones) and never a credential.
 */
import { FerryError, backendFailed, forbidden, notFound, type FerryErrorOptions } from '../../errors.js';

/** SFTP v3 status codes Ferry tells apart. */
export const STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** The SFTP status code of a server reply error, or undefined for any other error. */
export function statusOf(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

const LOST = Symbol('sftp connection lost');

/** A `backend` error that also says: the connection it happened on is gone. */
export function connectionLost(e: unknown): FerryError {
  const error = backendFailed('The connection to the SFTP server was lost.', {
    providerMessage: e instanceof Error ? e.message : String(e),
    cause: e,
  });
  Object.defineProperty(error, LOST, { value: true });
  return error;
}

/** True when `e` means the connection broke (so the operation may be retried on another). */
export function isConnectionLost(e: unknown): boolean {
  if (e instanceof FerryError) return (e as unknown as Record<symbol, unknown>)[LOST] === true;
  const status = statusOf(e);
  return status === undefined || status === STATUS.NO_CONNECTION || status === STATUS.CONNECTION_LOST;
}

/**
 * The domain error for a failed SFTP request on instance path `p`; `action` completes "could
 * not ... p" ("read", "list", "create"). FerryErrors pass through unchanged.
 */
export function sftpError(e: unknown, p: string, action: string): FerryError {
  if (e instanceof FerryError) return e;
  if (isConnectionLost(e)) return connectionLost(e);
  const options: FerryErrorOptions = { providerMessage: (e as Error).message, cause: e };
  switch (statusOf(e)) {
    case STATUS.NO_SUCH_FILE:
      return notFound(`${p} does not exist`, options);
    case STATUS.PERMISSION_DENIED:
      return forbidden(`The SFTP server does not allow Ferry to ${action} ${p}.`, options);
    default:
      return backendFailed(`The SFTP server could not ${action} ${p}.`, options);
  }
}
