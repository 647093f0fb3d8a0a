import { constants } from 'node:os';
import type { FsError } from '../errors';

/** The negative errno fuse-native expects for an errno name, on this platform. */
export function fuseErrno (name: keyof typeof constants.errno): number {
  return -(constants.errno[name] ?? constants.errno.EIO);
}

export const EIO = fuseErrno('EIO');
export const ENOENT = fuseErrno('ENOENT');
export const EROFS = fuseErrno('EROFS');
export const EISDIR = fuseErrno('EISDIR');
export const ENOTDIR = fuseErrno('ENOTDIR');
export const EBADF = fuseErrno('EBADF');

/**
 * What a failed read surfaces as. Always EIO: a timeout, a cancel and an origin error all
 * mean "these bytes cannot be had now", and EIO is what every program treats as a read
 * failure rather than, say, a reason to retry forever (EAGAIN) or end of file (a short read).
 */
export function readErrno (_err: FsError): number {
  return EIO;
}
