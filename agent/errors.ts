/**
 * Errors as typed values: every failure that can reach a reader or a client
 * carries the errno it should surface as, and a message a user can act on.
 */
export type Errno =
  | 'EIO' | 'ETIMEDOUT' | 'ECANCELED' | 'ENOENT' | 'EEXIST' | 'EISDIR' | 'ENOTDIR'
  | 'EROFS' | 'EINVAL' | 'ENAMETOOLONG' | 'ENOSPC' | 'EBADF' | 'ESHUTDOWN' | 'EBUSY' | 'EACCES';

export class FsError extends Error {
  override readonly name = 'FsError';
  constructor (readonly errno: Errno, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isFsError (err: unknown): err is FsError {
  return err instanceof FsError;
}

/** Wraps anything thrown into an FsError, keeping an FsError as it is. */
export function toFsError (err: unknown, errno: Errno = 'EIO'): FsError {
  if (err instanceof FsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FsError(errno, message, { cause: err });
}
