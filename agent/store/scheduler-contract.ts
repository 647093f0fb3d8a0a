import type { FsError } from '../errors';
import type { DownloadKind, DownloadSlots } from './download-slots';

// What the scheduler (download-scheduler.ts) sees of its file and its downloads, and tells
// them: it runs, and is tested, with neither a temp file nor a network behind them.

/** What the scheduler needs of its file: what is present, what is waited for, how fast it comes. */
export interface ScheduledFile {
  readonly size: number;
  /** First missing byte in [from, to), or -1 when all are present. */
  firstMissing (from: number, to: number): number;
  /** The ranges reads are waiting for now, oldest first. */
  waitingReads (): Iterable<{ readonly offset: number; readonly end: number }>;
  /** Download rate over the last few seconds. */
  readonly bytesPerSecond: number;
  /** Bytes present in all. */
  readonly presentBytes: number;
  /** Monotonic time of the file's last byte (or of its first download's start). */
  readonly lastProgressAt: number;
  /** Its reads failed for a stall and no byte came since. */
  readonly readsStalled: boolean;
}

/** What the scheduler needs of one download (agent/store/downloader.ts). */
export interface ScheduledDownload {
  kind: DownloadKind;
  /** The next byte it will write. */
  readonly position: number;
  /** End (exclusive) of its claim. */
  readonly limit: number;
  /** Monotonic time of its last byte on disk (or its start, or its release from its read-ahead bound). */
  readonly lastProgressAt: number;
  /** Monotonic time of its last byte on disk; -Infinity before the first. */
  readonly lastByteAt: number;
  /** Gives up the claim from `end` on. */
  setLimit (end: number): void;
  /** Moves its read-ahead bound forward. */
  allowUpTo (end: number): void;
  abort (): void;
  /** Cuts a back-off pause short. */
  retryNow (): void;
  /** Resolves once its claim is present (or it stopped at its limit); rejects with FsError. */
  run (): Promise<void>;
}

/** What the scheduler tells its file. */
export interface SchedulerEvents {
  /** A download started; `first` when none was running (the file's stall clock starts now). */
  started (first: boolean): void;
  /** A download failed for good (a 404, a changed file): every other one was stopped, and the scheduler halted. */
  failed (err: FsError): void;
  /** A download ended and the whole file is present. */
  complete (): void;
  /** No download runs, and none could start for the waiting reads or the fill. */
  idle (): void;
}

export interface SchedulerOptions {
  /** Origin connections across all files. */
  slots: DownloadSlots;
  /** Origin connections this file may use at once. */
  maxPerFile: number;
  /** Files up to this size are filled whole once opened. */
  fillMaxBytes: number;
  /** False when the origin ignores Range: one download must run from the start, so nothing splits. */
  acceptRanges: boolean;
  /** Makes (does not start) a download over [from, limit) that runs no further than `allowedEnd` for now. */
  createDownload (kind: DownloadKind, from: number, limit: number, allowedEnd: number): ScheduledDownload;
  events: SchedulerEvents;
  /** Monotonic milliseconds (performance.now unless a test gives a clock). */
  now?: () => number;
}
