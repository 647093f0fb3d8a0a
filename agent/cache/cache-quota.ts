import type { Logger } from 'pino';
import { FsError } from '../errors';
import type { StoreQuota } from '../store/store-contract';
import { waitForWake } from '../wait-for-wake';

/** While the quota cannot be met, check again this often even if nothing says space freed. */
const RECHECK_MS = 2000;
/** A full disk counts as over once writes have gone this long without ENOSPC (several downloads may flap at the edge). */
const DISK_FULL_QUIET_MS = 5000;
/** The full-disk error is logged at most this often. */
const DISK_FULL_LOG_EVERY_MS = 60_000;
/**
 * Share of the quota kept free for what the filesystem spends besides file data: the cache
 * folder's own blocks and the extent blocks of fragmented sparse files, which `du` counts.
 */
const FS_OVERHEAD_SHARE = 0.01;
const FS_OVERHEAD_MIN = 64 * 1024;
const FS_OVERHEAD_MAX = 16 * 1024 * 1024;

/**
 * Frees cache space: drops the least recently read data of files that are not open and not
 * pinned (never `exceptId`'s). Resolves with the bytes freed.
 */
export type Evictor = (needBytes: number, exceptId: string) => Promise<number>;

/**
 * The hard limit on bytes the cache holds, counted in real blocks. A write first reserves
 * its bytes; if they do not fit, older data of closed, unpinned files is evicted; if that is
 * not enough, the write waits (its download pauses, its readers wait within their
 * deadlines) until space frees. A full disk (ENOSPC) is handled the same way.
 */
export class CacheQuota implements StoreQuota {
  readonly maxBytes: number;
  readonly #evict: Evictor;
  readonly #log: Logger;
  /** Blocks each file holds on disk, as its ranges say. */
  readonly #allocated = new Map<string, number>();
  /** Bytes reserved by writes in flight, one writer per file. */
  readonly #reserved = new Map<string, number>();
  #used = 0;
  #changed: Array<() => void> = [];
  /** When the disk last answered ENOSPC, while a full-disk episode lasts. */
  #diskFullAt: number | null = null;
  #diskFullLoggedAt = -Infinity;

  /** What file data may take: the quota less the filesystem's overhead. */
  readonly #dataLimit: number;
  /**
   * On a filesystem that does not keep files sparse: a file's full size, which its temp file
   * takes on disk however little of it is downloaded. Null where files stay sparse.
   */
  readonly #wholeSizeOf: ((id: string) => number | undefined) | null;

  constructor (maxBytes: number, evict: Evictor, log: Logger, wholeSizeOf: ((id: string) => number | undefined) | null = null) {
    this.maxBytes = maxBytes;
    this.#wholeSizeOf = wholeSizeOf;
    this.#dataLimit = maxBytes - Math.min(FS_OVERHEAD_MAX, Math.max(FS_OVERHEAD_MIN, Math.floor(maxBytes * FS_OVERHEAD_SHARE)));
    this.#evict = evict;
    this.#log = log;
  }

  /** Bytes held plus bytes reserved. */
  get usedBytes (): number { return this.#used; }

  /** Sets what a file holds now (after a write, a drop, at start from the database). */
  setAllocated (id: string, held: number): void {
    const bytes = held > 0 && this.#wholeSizeOf !== null ? Math.max(held, this.#wholeSizeOf(id) ?? 0) : held;
    const before = (this.#allocated.get(id) ?? 0) + (this.#reserved.get(id) ?? 0);
    this.#reserved.delete(id);
    if (bytes > 0) this.#allocated.set(id, bytes); else this.#allocated.delete(id);
    this.#used += bytes - before;
    if (bytes < before) this.poke();
  }

  /** Waits until `bytes` more fit, evicting what it may; the reservation lasts until setAllocated. */
  async reserve (id: string, bytes: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new FsError('ECANCELED', 'download stopped while waiting for cache space');
      const over = this.#used + bytes - this.#dataLimit;
      if (over <= 0) break;
      if (await this.#evict(over, id) > 0) continue;
      await this.#waitForChange(signal);
    }
    this.#reserved.set(id, (this.#reserved.get(id) ?? 0) + bytes);
    this.#used += bytes;
  }

  /** Drops a reservation whose write did not happen. */
  unreserve (id: string): void {
    const r = this.#reserved.get(id) ?? 0;
    this.#reserved.delete(id);
    this.#used -= r;
    if (r > 0) this.poke();
  }

  /** The disk itself is full: log once, try to evict, else wait for a change or a while. */
  async waitForDiskSpace (id: string, bytes: number, signal: AbortSignal): Promise<void> {
    const now = Date.now();
    if (this.#diskFullAt === null && now - this.#diskFullLoggedAt >= DISK_FULL_LOG_EVERY_MS) {
      this.#diskFullLoggedAt = now;
      this.#log.error('the cache disk is full (ENOSPC); downloads are paused until space frees');
    }
    this.#diskFullAt = now;
    if (await this.#evict(bytes, id) > 0) return;
    await this.#waitForChange(signal);
  }

  /** A write succeeded: once writes have gone a while without ENOSPC, the full-disk episode is over. */
  noteWriteSucceeded (): void {
    if (this.#diskFullAt === null || Date.now() - this.#diskFullAt < DISK_FULL_QUIET_MS) return;
    this.#diskFullAt = null;
    this.#log.info('cache disk has space again; downloads resume');
  }

  /** Something may have become evictable (a file closed or was unpinned): waiting writes look again. */
  poke (): void {
    const waiting = this.#changed;
    this.#changed = [];
    for (const wake of waiting) wake();
  }

  async #waitForChange (signal: AbortSignal): Promise<void> {
    await waitForWake(RECHECK_MS, signal, wake => { this.#changed.push(wake); });
  }
}
