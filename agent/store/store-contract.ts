import type { Dispatcher } from 'undici';
import type { FsError } from '../errors';
import type { FileState } from '../file-state';
import type { FileSource } from '../origin/file-source';
import type { OriginInfo } from '../origin/origin-info';
import type { CommitSource } from '../state/range-committer';
import type { ContentHasher } from '../verify/content-hasher';
import type { BandwidthLimiter } from './bandwidth-limiter';
import type { DownloadSlots } from './download-slots';
import type { FileIo } from './file-io';

// What a store (temp-file-store.ts) is given and whom it tells: the pool, the quota and the
// agent's observers depend on this, not on the store, so none of them imports the store.

/** A read's answer: bytes placed in the caller's buffer, or the error to surface. */
export type ReadCallback = (err: FsError | null, bytes: number) => void;

export interface StoreSource {
  /** Stable id of the file: names its temp file and its rows in the state database. */
  id: string;
  name: string;
  /** The URL and headers of each connection: fixed, or minted by a url-command. */
  endpoints: FileSource;
  origin: OriginInfo;
  /** The bytes on disk already hashed to `origin.digest` (a file checked in an earlier run). */
  verified: boolean;
}

export interface StoreOptions {
  dispatcher: Dispatcher;
  /** --read-timeout: a waiting read fails once the download received nothing for this long. */
  readTimeoutMs: number;
  /** --read-max-wait: a waiting read fails after this long whatever happens. */
  readMaxWaitMs: number;
  /** A download attempt whose body goes quiet this long is dropped and retried. */
  downloadStallMs: number;
  /** Origin connections across all files: demand downloads before read-ahead and fill. */
  slots: DownloadSlots;
  /** The rate caps (--bwlimit, --background-bwlimit): every download takes its bytes from it. */
  limiter?: BandwidthLimiter;
  /** Origin connections one file may use at once. */
  maxDownloadsPerFile: number;
  /** Files up to this size are downloaded whole in the background once opened. */
  fillMaxBytes: number;
  /** The cache's space limit: every write reserves its bytes first. */
  quota: StoreQuota;
  /** Hashes files with a digest, off the event loop. */
  hasher: ContentHasher;
  /** Told of state changes, writes, drops and retries: persistence, logs and status. */
  observer?: StoreObserver;
  /** The temp file's system calls; Node's unless a test injects faults. */
  fileIo?: FileIo;
  /** The store closed: the FUSE binding lets go of its descriptor of the temp file (FuseMount.retireFastReads). */
  retireFastReads?: (state: Buffer) => void;
}

/** What a store needs of the cache quota (agent/cache/cache-quota.ts). */
export interface StoreQuota {
  reserve (id: string, bytes: number, signal: AbortSignal): Promise<void>;
  unreserve (id: string): void;
  setAllocated (id: string, bytes: number): void;
  waitForDiskSpace (id: string, bytes: number, signal: AbortSignal): Promise<void>;
  noteWriteSucceeded (): void;
}

export interface StoreObserver {
  onStateChange? (store: ObservedStore, state: FileState, err: FsError | null): void;
  /** A download attempt failed and is retried: the file's `attempt`th such failure, `withoutProgress` of them in a row with no byte. */
  onRetry? (store: ObservedStore, err: FsError, delayMs: number, attempt: number, withoutProgress: number): void;
  /** Bytes reached the temp file (not yet synced). */
  onWrite? (store: ObservedStore, bytes: number): void;
  /** All bytes are being dropped; called in the turn the drop begins, before the file is cut, so the database stops claiming them first. */
  onDiscard? (store: ObservedStore): void;
  /** Last chance to commit ranges before the descriptor closes. */
  beforeClose? (store: ObservedStore): Promise<void>;
  /** Reads started or stopped waiting (see `waiterCount`). */
  onWaitersChanged? (store: ObservedStore): void;
  /** The whole file was hashed: it matched its digest, or not (`actual` is what it hashed to). */
  onVerified? (store: ObservedStore, ok: boolean, actual: string): void;
}

/** What an observer sees of the store that tells it: enough to persist its ranges and show it. */
export interface ObservedStore extends CommitSource {
  readonly source: StoreSource;
  readonly waiterCount: number;
}
