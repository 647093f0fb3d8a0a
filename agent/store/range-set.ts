/**
 * A set of byte ranges [start, end), kept sorted and merged. Lookups are a
 * binary search (O(log n) in the number of ranges); an insert also moves the
 * tail of two arrays, which stays small because adjacent ranges merge.
 */
export interface Span { start: number; end: number }

/** Filesystem block: a sparse file holds whole blocks, so disk usage is counted in them. */
export const BLOCK_BYTES = 4096;

/**
 * Bytes of whole blocks a range occupies. Summed per range, two ranges sharing a block
 * count it twice: a slight overestimate, on the safe side of a hard quota.
 */
export function rangeBlockBytes (start: number, end: number): number {
  if (end <= start) return 0;
  return Math.ceil(end / BLOCK_BYTES) * BLOCK_BYTES - Math.floor(start / BLOCK_BYTES) * BLOCK_BYTES;
}

export class RangeSet {
  // Parallel arrays rather than an array of objects: no allocation per range on lookups.
  #starts: number[] = [];
  #ends: number[] = [];
  #bytes = 0;
  #blockBytes = 0;

  get bytes (): number { return this.#bytes; }
  /** Disk the ranges take in a sparse file, in whole blocks. */
  get blockBytes (): number { return this.#blockBytes; }

  /** Adds [start, end) and returns the merged range that now holds it. */
  add (start: number, end: number): Span {
    if (end <= start) return { start, end: start };
    const starts = this.#starts;
    const ends = this.#ends;
    // First range that ends at or after `start` can merge with the new one.
    const i = lowerBound(ends, start);
    let j = i;
    let mergedStart = start;
    let mergedEnd = end;
    let removed = 0;
    let removedBlocks = 0;
    while (j < starts.length && starts[j] <= end) {
      if (starts[j] < mergedStart) mergedStart = starts[j];
      if (ends[j] > mergedEnd) mergedEnd = ends[j];
      removed += ends[j] - starts[j];
      removedBlocks += rangeBlockBytes(starts[j], ends[j]);
      j++;
    }
    starts.splice(i, j - i, mergedStart);
    ends.splice(i, j - i, mergedEnd);
    this.#bytes += mergedEnd - mergedStart - removed;
    this.#blockBytes += rangeBlockBytes(mergedStart, mergedEnd) - removedBlocks;
    return { start: mergedStart, end: mergedEnd };
  }

  /** True when every byte of [start, end) is present. An empty range is always present. */
  contains (start: number, end: number): boolean {
    if (end <= start) return true;
    const i = upperBound(this.#starts, start) - 1;
    return i >= 0 && this.#ends[i] >= end;
  }

  /** The first byte in [from, to) that is missing, or -1 when all are present. */
  firstMissing (from: number, to: number): number {
    if (to <= from) return -1;
    const i = upperBound(this.#starts, from) - 1;
    const pos = i >= 0 && this.#ends[i] > from ? this.#ends[i] : from;
    return pos < to ? pos : -1;
  }

  /** Where the next present range at or after `pos` starts, or `limit` if none does before it. */
  nextPresent (pos: number, limit: number): number {
    const i = upperBound(this.#starts, pos);
    // A range starting at or before pos that still covers it means pos itself is present.
    if (i > 0 && this.#ends[i - 1] > pos) return pos;
    return i < this.#starts.length && this.#starts[i] < limit ? this.#starts[i] : limit;
  }

  /** Drops every range at or beyond `end` and cuts the one that crosses it. */
  truncate (end: number): void {
    while (this.#starts.length > 0 && this.#starts[this.#starts.length - 1] >= end) {
      const s = this.#starts.pop()!;
      const e = this.#ends.pop()!;
      this.#bytes -= e - s;
      this.#blockBytes -= rangeBlockBytes(s, e);
    }
    const last = this.#ends.length - 1;
    if (last >= 0 && this.#ends[last] > end) {
      const s = this.#starts[last];
      this.#bytes -= this.#ends[last] - end;
      this.#blockBytes += rangeBlockBytes(s, end) - rangeBlockBytes(s, this.#ends[last]);
      this.#ends[last] = end;
    }
  }

  clear (): void {
    this.#starts = [];
    this.#ends = [];
    this.#bytes = 0;
    this.#blockBytes = 0;
  }

  toArray (): Array<[number, number]> {
    return this.#starts.map((s, i) => [s, this.#ends[i]]);
  }
}

/** Index of the first element >= value. */
function lowerBound (a: number[], value: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Index of the first element > value. */
function upperBound (a: number[], value: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= value) lo = mid + 1; else hi = mid;
  }
  return lo;
}
