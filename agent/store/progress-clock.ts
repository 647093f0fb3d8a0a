/**
 * A download that has received nothing this long shows as stalled (`fsctl ls`, events), with
 * no rate: longer than the pauses a healthy origin makes, short enough that a user is not
 * shown a rate for seconds after the bytes stopped.
 */
const STALL_SHOWN_MS = 3000;

/**
 * The kernel retries a read-ahead that failed as a synchronous read at once: a read that
 * comes this soon after the file's reads failed for a stall, with no byte since, fails at
 * once too, whatever download now claims its bytes (else a download restarted meanwhile
 * would give it a second timeout). A read that comes later gets its full timeout.
 */
const STALL_RETRY_WINDOW_MS = 1000;

/** What the clock needs of the download that will serve a read (agent/store/downloader.ts). */
interface ServingDownload {
  readonly lastByteAt: number;
  readonly lastProgressAt: number;
}

/**
 * When one file last made progress, in monotonic milliseconds: what its waiting reads' stall
 * deadlines count from, whether it shows as stalled, and how the connection slots judge it.
 */
export class ProgressClock {
  readonly #shownAfterMs: number;
  /** The file's last byte on disk (or the start of its first download). */
  #lastProgressAt = performance.now();
  /** The file's last byte on disk; -Infinity before the first. */
  #lastByteAt = -Infinity;
  /** When reads last failed for a stall, while no byte has come since. */
  #readsStalledAt: number | null = null;

  /** `readTimeoutMs`: a file quiet this long shows as stalled even before STALL_SHOWN_MS. */
  constructor (readTimeoutMs: number) {
    this.#shownAfterMs = Math.min(STALL_SHOWN_MS, readTimeoutMs);
  }

  get lastProgressAt (): number { return this.#lastProgressAt; }
  /** Reads failed for a stall and no byte came since. */
  get readsStalled (): boolean { return this.#readsStalledAt !== null; }

  /** A download started with none running: the stall clock starts now. */
  downloadStarted (): void { this.#lastProgressAt = performance.now(); }

  /** Bytes reached the temp file. */
  byteArrived (): void {
    this.#lastProgressAt = this.#lastByteAt = performance.now();
    this.#readsStalledAt = null;
  }

  /** Waiting reads failed for a stall. */
  readsFailedForStall (): void { this.#readsStalledAt = performance.now(); }

  /** Nothing has arrived for a while: a downloading file shows as stalled. */
  get quiet (): boolean { return performance.now() - this.#lastProgressAt >= this.#shownAfterMs; }

  /** Since when (ms since the epoch) nothing has arrived. */
  get quietSince (): number { return Date.now() - (performance.now() - this.#lastProgressAt); }

  /**
   * What the stall of a read that came at `since` counts from: the serving download's last
   * byte, so a read joining a download that has stalled fails at once. Its start (or its
   * release from its read-ahead bound) counts too, but never later than the read came: a
   * read that waited for a connection gets no second timeout. A read no download serves yet
   * (none started, or waiting for a connection) counts from its own arrival. The kernel's
   * retry of a read that just failed for a stall fails at once.
   */
  waitCountsFrom (serving: ServingDownload | undefined, since: number): number {
    if (this.#readsStalledAt !== null && since - this.#readsStalledAt < STALL_RETRY_WINDOW_MS) return -Infinity;
    if (serving !== undefined) return Math.max(serving.lastByteAt, Math.min(serving.lastProgressAt, since));
    return Math.max(this.#lastByteAt, since);
  }
}
