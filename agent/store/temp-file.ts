import fs from 'node:fs';
import { FsError } from '../errors';
import { nodeFileIo, type FileIo } from './file-io';
import type { RangeSet } from './range-set';

/**
 * The sparse temp file of one remote file, always at the file's full size. It counts the
 * reads and writes in flight, because the descriptor may only close once none is: a read
 * that completed after the close would land in a buffer FUSE may already have reused.
 */
export class TempFile {
  readonly #io: FileIo;
  readonly #fd: number;
  /** The remote file's name, for error messages. */
  readonly #name: string;
  #inFlight = 0;
  #onIdle: (() => void) | null = null;
  #closed = false;

  private constructor (io: FileIo, fd: number, name: string) {
    this.#io = io;
    this.#fd = fd;
    this.#name = name;
  }

  /**
   * Opens (or creates, owner-only) the file at `size`. `present` holds the ranges the
   * database claims; those the file is too short to hold (it was cut or is gone) are
   * dropped from it, so no byte is served that is not there. True in `trimmed` if any were.
   */
  static async open (
    path: string, name: string, size: number, present: RangeSet, io: FileIo = nodeFileIo
  ): Promise<{ file: TempFile; trimmed: boolean }> {
    // Nothing claimed: no stale byte may survive (O_TRUNC), and there is nothing to check.
    // Each step is a trip through the thread pool, which a small file's first read waits on.
    const fresh = present.bytes === 0;
    const fd = await io.open(path, fs.constants.O_RDWR | fs.constants.O_CREAT | (fresh ? fs.constants.O_TRUNC : 0), 0o600);
    let trimmed = false;
    try {
      if (!fresh) {
        const onDisk = await io.size(fd);
        if (onDisk < size) {
          present.truncate(onDisk);
          trimmed = true;
        }
      }
      await io.truncate(fd, size);
    } catch (err) {
      await io.close(fd).catch(() => {});
      throw err;
    }
    return { file: new TempFile(io, fd, name), trimmed };
  }

  get closed (): boolean { return this.#closed; }

  /** The descriptor, for the FUSE thread's own reads (it duplicates it; see FastReadGate). */
  get fd (): number { return this.#fd; }

  /** Reads exactly `length` bytes at `pos` into `buf`; callback style, as the FUSE read path is hot. */
  read (buf: Buffer, pos: number, length: number, cb: (err: FsError | null, bytes: number) => void): void {
    this.#inFlight++;
    const finish = (err: FsError | null, n: number): void => {
      this.#ended();
      cb(err, n);
    };
    const step = (done: number): void => {
      this.#io.read(this.#fd, buf, done, length - done, pos + done, (err, n) => {
        if (err !== null) return finish(new FsError('EIO', `reading the temp file of ${this.#name}: ${err.message}`), 0);
        // The file always has its full size, so a short read means it was cut under us.
        if (n === 0) return finish(new FsError('EIO', `temp file of ${this.#name} is shorter than expected`), 0);
        if (done + n < length) return step(done + n);
        finish(null, length);
      });
    };
    step(0);
  }

  /**
   * Writes all of `chunks` at `pos`, or rejects: resolving means every byte is in the file.
   * A filling disk lands fewer bytes than asked with no error; the rest is written in further
   * calls, and the disk's ENOSPC (or a call that lands nothing) rejects with code ENOSPC,
   * which is the caller's to handle. Bytes a rejected write did land are not the caller's to claim.
   */
  write (chunks: Buffer[], pos: number): Promise<void> {
    return this.#track(async () => {
      let rest = chunks;
      let at = pos;
      let want = byteLength(rest);
      while (want > 0) {
        const n = await this.#io.writev(this.#fd, rest, at);
        if (n >= want) return;
        if (n <= 0) throw Object.assign(new Error(`no space left writing the temp file of ${this.#name}`), { code: 'ENOSPC' });
        rest = skipBytes(rest, n);
        at += n;
        want -= n;
      }
    });
  }

  sync (): Promise<void> {
    return this.#track(() => this.#io.datasync(this.#fd));
  }

  /** Drops every byte: the file stays at its full size, all of it a hole. */
  cut (size: number): Promise<void> {
    return this.#track(async () => {
      await this.#io.truncate(this.#fd, 0);
      await this.#io.truncate(this.#fd, size);
    });
  }

  /** Resolves once no read or write is in flight. */
  idle (): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise<void>(resolve => {
      const previous = this.#onIdle;
      this.#onIdle = () => { previous?.(); resolve(); };
    });
  }

  /** Closes the descriptor once the I/O in flight has ended. */
  async close (): Promise<void> {
    await this.idle();
    this.#closed = true;
    await this.#io.close(this.#fd);
  }

  async #track (op: () => Promise<void>): Promise<void> {
    this.#inFlight++;
    try {
      await op();
    } finally {
      this.#ended();
    }
  }

  #ended (): void {
    if (--this.#inFlight === 0 && this.#onIdle !== null) {
      this.#onIdle();
      this.#onIdle = null;
    }
  }
}

function byteLength (chunks: Buffer[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

/** `chunks` less their first `n` bytes (views, no copy). */
function skipBytes (chunks: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (n >= chunks[i].length) n -= chunks[i++].length;
  return [chunks[i].subarray(n), ...chunks.slice(i + 1)];
}
