import { FsError } from '../errors';
import { BLOCK_BYTES } from './range-set';
import type { StoreQuota } from './store-contract';
import type { TempFile } from './temp-file';

/** One download write of a store's temp file, and what tells it the store's world changed. */
export interface QuotaWrite {
  file: TempFile;
  quota: StoreQuota;
  /** The store's id: its quota account. */
  id: string;
  /** The remote file's name, for error messages. */
  name: string;
  signal: AbortSignal;
  /** The store is closing. */
  closing (): boolean;
  /** A drop of all bytes began since the write did: what it writes is being cut. */
  dropped (): boolean;
}

/**
 * Reserves quota, then writes; a full disk waits for space like a full quota does. Resolves
 * only when every byte landed in the file the write began in; throws ECANCELED once it is not
 * that world any more (so the caller claims nothing), EIO when the disk fails otherwise.
 */
export async function writeWithinQuota (w: QuotaWrite, chunks: Buffer[], pos: number, length: number): Promise<void> {
  const { quota, id, signal } = w;
  // A write may begin and end inside partly filled blocks: reserve for both.
  const reserve = length + 2 * BLOCK_BYTES;
  for (;;) {
    await quota.reserve(id, reserve, signal);
    if (w.closing() || signal.aborted || w.dropped()) {
      quota.unreserve(id);
      throw stoppedError(w.name);
    }
    try {
      await w.file.write(chunks, pos);
      if (w.dropped()) {
        quota.unreserve(id);
        throw stoppedError(w.name);
      }
      quota.noteWriteSucceeded();
      return;
    } catch (err) {
      if (err instanceof FsError) throw err;
      quota.unreserve(id);
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') {
        throw new FsError('EIO', `writing the temp file of ${w.name}: ${(err as Error).message}`);
      }
    }
    await quota.waitForDiskSpace(id, reserve, signal);
  }
}

/** A write refused because its download was stopped, or its store's bytes dropped or closed. */
export function stoppedError (name: string): FsError {
  return new FsError('ECANCELED', `download of ${name} was stopped`);
}
