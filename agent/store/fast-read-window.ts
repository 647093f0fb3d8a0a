import { FastReadGate } from './fast-read-gate';

/**
 * Fast reads of a downloading file stop past the furthest read JavaScript saw by half that
 * read's read-ahead window, and at most this: a sequential reader still shows itself every
 * few MiB, while its download has half a window left to go, so the download never stops at
 * its read-ahead bound for a reader it has not heard of.
 */
const FAST_READ_LEAD = 16 * 1024 * 1024;

/**
 * How far the FUSE thread answers one file's reads without JavaScript (the gate is the switch
 * the binding reads; this is the policy that sets it):
 *  - a whole file: all of it, once checked against its digest (until then, reads wait for the
 *    verdict in JavaScript);
 *  - a file still downloading: its present prefix, but only up to the frontier (half a
 *    read-ahead window, at most FAST_READ_LEAD, past the furthest read JavaScript saw), so a
 *    sequential reader still shows itself and its read-ahead keeps the download ahead.
 * The store shuts the gate, and keeps it shut, while bytes are dropped or the file closes.
 */
export class FastReadWindow {
  readonly #gate: FastReadGate;
  readonly #size: number;
  /** A little past the furthest read JavaScript saw. */
  #frontier = 0;

  constructor (gate: FastReadGate, size: number) {
    this.#gate = gate;
    this.#size = size;
  }

  /** JavaScript saw a read ending at `end` whose read-ahead runs to `ahead`: true when the window may widen. */
  sawRead (end: number, ahead: number): boolean {
    const frontier = end + Math.min(FAST_READ_LEAD, Math.floor((ahead - end) / 2));
    if (frontier <= this.#frontier) return false;
    this.#frontier = frontier;
    return true;
  }

  /** Opens the gate as far as the bytes present from 0 (to `prefixEnd`) and the verdict allow. */
  update (prefixEnd: number, checked: boolean): void {
    let end: number;
    if (prefixEnd === this.#size) end = checked && this.#size > 0 ? FastReadGate.WHOLE : 0;
    else end = Math.min(prefixEnd, this.#frontier);
    if (end !== this.#gate.end) this.#gate.open(end);
  }

  /** Every byte is being dropped: shut the gate, and start the frontier again. Resolves once no fast read is in flight. */
  shut (): Promise<void> {
    this.#frontier = 0;
    return this.#gate.close();
  }
}
