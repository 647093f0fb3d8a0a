import { constants } from 'node:os';
import { isFsError } from '../errors';

/** The negative errno fuse-native expects for an errno name, on this platform. */
function fuseErrno (name: string): number {
  // A name Node's table lacks (ESHUTDOWN, for one) surfaces as EIO.
  return -((constants.errno as Record<string, number | undefined>)[name] ?? constants.errno.EIO);
}

const EIO = fuseErrno('EIO');
export const ENOENT = fuseErrno('ENOENT');
export const EROFS = fuseErrno('EROFS');
export const EISDIR = fuseErrno('EISDIR');
export const ENOTDIR = fuseErrno('ENOTDIR');
export const EBADF = fuseErrno('EBADF');
export const ETIMEDOUT = fuseErrno('ETIMEDOUT');

/**
 * What every failed read surfaces as, whatever the cause: a timeout, a cancel and an origin
 * error all mean "these bytes cannot be had now", and EIO is what every program treats as a
 * read failure rather than, say, a reason to retry forever (EAGAIN) or end of file.
 */
export const READ_FAILED = EIO;

/** The negative errno a failure surfaces as: an FsError's own, EIO for anything else. */
export function errnoOf (err: unknown): number {
  return isFsError(err) ? fuseErrno(err.errno) : EIO;
}
