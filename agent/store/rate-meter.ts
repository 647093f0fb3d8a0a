/** Seconds of history the rate is averaged over: long enough to smooth bursts, short enough to show a stall. */
const WINDOW_SECONDS = 5;

/**
 * Bytes per second over the last few seconds, in per-second buckets: O(1) per write and
 * no allocation.
 */
export class RateMeter {
  readonly #buckets = new Float64Array(WINDOW_SECONDS);
  #second = 0;
  readonly #now: () => number;

  constructor (now: () => number = () => performance.now()) {
    this.#now = now;
    this.#second = Math.floor(now() / 1000);
  }

  add (bytes: number): void {
    this.#advance();
    this.#buckets[this.#second % WINDOW_SECONDS] += bytes;
  }

  /** Bytes per second over the window (the current, partial second included). */
  get bytesPerSecond (): number {
    this.#advance();
    let total = 0;
    for (const b of this.#buckets) total += b;
    const elapsedInCurrent = (this.#now() / 1000) - this.#second;
    return total / (WINDOW_SECONDS - 1 + Math.max(elapsedInCurrent, 0.001));
  }

  #advance (): void {
    const second = Math.floor(this.#now() / 1000);
    const gap = Math.min(second - this.#second, WINDOW_SECONDS);
    for (let i = 1; i <= gap; i++) this.#buckets[(this.#second + i) % WINDOW_SECONDS] = 0;
    this.#second = second;
  }
}
