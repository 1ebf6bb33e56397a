/**
 * Maps Node file-system errors onto Ferry's domain errors for the localfs element. Messages
 * name the instance-relative path the caller used, never a host path (Node's own messages
 * contain the absolute path, so they are kept only as `cause`, for the log).
 */
import { backendFailed, conflict, invalid, isFerryError, notFound } from '../../errors.js';

/** The errno code of a Node system error, if it is one. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * True for errors that mean "nothing (visible) is there": a missing entry, a file where a
 * folder was expected on the way, or a symbolic link refused by O_NOFOLLOW.
 */
export function isMissing(e: unknown): boolean {
  const code = errorCode(e);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

/**
 * The domain error for a failed file-system call on instance path `path` while doing `action`
 * ("read", "write", ...). Domain errors pass through unchanged; an error without an errno code
 * is not a file-system error and is returned as is for the caller to handle.
 */
export function fsError(e: unknown, path: string, action: string): unknown {
  if (isFerryError(e)) return e;
  const code = errorCode(e);
  const o = { cause: e };
  switch (code) {
    case undefined:
      return e;
    case 'ENOENT':
    case 'ELOOP':
      return notFound(`${path} does not exist`, o);
    case 'EEXIST':
    case 'ENOTEMPTY':
      return conflict(`${path} already exists`, o);
    case 'ENOTDIR':
      return invalid(`cannot ${action} ${path}: a part of the path is a file, not a folder`, o);
    case 'EISDIR':
      return invalid(`cannot ${action} ${path}: it is a folder, not a file`, o);
    case 'ENAMETOOLONG':
      return invalid(`cannot ${action} ${path}: the name is too long for the file system`, o);
    case 'EINVAL':
      return invalid(`cannot ${action} ${path}: the file system refused the operation`, { ...o, providerMessage: code });
    case 'ENOSPC':
    case 'EDQUOT':
      return backendFailed(`cannot ${action} ${path}: no space left on the device`, {
        ...o,
        providerMessage: 'no space left on device',
      });
    default:
      return backendFailed(`the local file system failed to ${action} ${path}`, { ...o, providerMessage: code });
  }
}
