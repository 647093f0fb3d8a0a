import fs from 'node:fs';
import { promisify } from 'node:util';

/**
 * The system calls a temp file makes, as one small interface: the agent uses Node's, and the
 * model test (test/fast/store-integrity-model.test.ts) wraps them to delay, reorder, shorten
 * and fail writes as a filling or failing disk does.
 *
 * Each call answers as the system call does: `writev` may land fewer bytes than asked with no
 * error (a filling disk), and `read` may return fewer bytes than asked.
 */
export interface FileIo {
  open (path: string, flags: number, mode: number): Promise<number>;
  size (fd: number): Promise<number>;
  truncate (fd: number, size: number): Promise<void>;
  /** Resolves with the bytes written, which may be fewer than the buffers hold. */
  writev (fd: number, buffers: Buffer[], pos: number): Promise<number>;
  /** Callback style: the FUSE read path is hot. */
  read (fd: number, buf: Buffer, offset: number, length: number, pos: number, cb: (err: Error | null, bytesRead: number) => void): void;
  datasync (fd: number): Promise<void>;
  close (fd: number): Promise<void>;
}

const writev = promisify(fs.writev);
const fstat = promisify(fs.fstat);

/** The real system calls, through libuv's thread pool. */
export const nodeFileIo: FileIo = {
  open: promisify(fs.open),
  size: async fd => (await fstat(fd)).size,
  truncate: promisify(fs.ftruncate),
  writev: async (fd, buffers, pos) => (await writev(fd, buffers, pos)).bytesWritten,
  read: (fd, buf, offset, length, pos, cb) => fs.read(fd, buf, offset, length, pos, cb),
  datasync: promisify(fs.fdatasync),
  close: promisify(fs.close),
};
