/**
 * The first read-ahead window: 1 MiB + 128 KiB, as mountpoint-s3's prefetcher starts, so the
 * kernel's own 128 KiB read-ahead lands inside what we already fetch.
 */
const START_WINDOW = 1024 * 1024 + 128 * 1024;
/** The window doubles on each sequential read up to this: enough to keep a fast origin busy. */
export const MAX_WINDOW = 64 * 1024 * 1024;
/**
 * How far a read may land from where the last one ended and still count as sequential: the
 * kernel sends its read-ahead requests concurrently, so they arrive a little out of order.
 */
const SEQUENTIAL_SLACK = START_WINDOW;

/**
 * Sequential-reader detection for one open handle: a run of reads that follow each other
 * grows the window of bytes fetched ahead; a seek shrinks it back to the start size.
 */
export class ReadAhead {
  #next = -1;
  #window = START_WINDOW;

  /**
   * Records a read of [pos, pos+len) and returns where fetching ahead of it should end.
   * `answeredTo`: reads before this offset may have been answered without JavaScript (the
   * FUSE thread's fast reads), so a read that lands that far past the last one this handle
   * saw is still sequential.
   */
  after (pos: number, len: number, answeredTo = 0): number {
    const gap = pos - this.#next;
    const sequential = this.#next >= 0 && (Math.abs(gap) <= SEQUENTIAL_SLACK || (gap > 0 && pos <= answeredTo + SEQUENTIAL_SLACK));
    this.#window = sequential ? Math.min(this.#window * 2, MAX_WINDOW) : START_WINDOW;
    this.#next = sequential ? Math.max(this.#next, pos + len) : pos + len;
    return this.#next + this.#window;
  }
}
