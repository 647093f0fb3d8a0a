import { FsError } from '../errors';
import type { Span } from './range-set';

/**
 * Reads waiting for bytes of one file.
 *
 * The protocol, in full:
 *  - The store checks its ranges and, only if bytes are missing, calls add() in the same
 *    synchronous turn. No await sits between the check and the registration, so a write
 *    cannot land in between and its wake-up cannot be lost.
 *  - After every write the store calls wake() with the range written and the merged range
 *    that now holds it. Only waiters whose end lies inside the written stretch can have
 *    become complete, and they sit side by side in a list sorted by end offset, so a wake
 *    touches those candidates and nothing else.
 *  - Every waiter has two deadlines, kept by one timer per queue: a stall (the download that
 *    will serve it received no byte for stallMs, counted from that download's last byte, not
 *    from the waiter's start, so a kernel retry of a failed read-ahead fails at once; the
 *    store's clock never starts later than the waiter came unless a byte arrived, so a read
 *    that waited for a connection still fails within stallMs) and a cap (maxWaitMs since the
 *    waiter came). Either rejects with ETIMEDOUT. The timer fires
 *    at the earliest deadline; a firing checks every waiter, which happens about once per
 *    stall period per download, never per read.
 *  - rejectAll() answers every waiter at once: cancel, download error, close, shutdown.
 */

export type WaitCallback = (err: FsError | null) => void;

export interface WaiterQueueOptions {
  /** A waiter fails once the download has received nothing for this long. */
  stallMs: number;
  /** A waiter fails once it has waited this long, however the download moves. */
  maxWaitMs: number;
  /**
   * Monotonic time (performance.now()) the stall of a read of [offset, end) that came at
   * `since` is counted from: the last byte received by the download that will serve it.
   */
  lastProgressAt: (offset: number, end: number, since: number) => number;
  /** Told after the number of waiting reads changed (once per add, once per batch settled). */
  onSizeChange?: () => void;
  /** Told when waiters failed for a stall (not for the cap), before they are answered. */
  onStalled?: () => void;
  now?: () => number;
}

export interface WaiterInfo {
  offset: number;
  length: number;
  waitedMs: number;
  /** Time left before the cap or a stall fails it, whichever is sooner. */
  deadlineInMs: number;
  pid: number | null;
}

interface Waiter {
  readonly offset: number;
  readonly end: number;
  readonly since: number;
  readonly pid: number | null;
  cb: WaitCallback | null; // null once settled
  signal: AbortSignal | null;
  onAbort: (() => void) | null;
}

export class WaiterQueue {
  readonly #opts: WaiterQueueOptions & { now: () => number };
  /** Live and settled waiters, sorted by end offset; settled ones are dropped lazily. */
  #byEnd: Waiter[] = [];
  /** Arrival order, which is also cap-deadline order because every waiter has the same cap. */
  #byArrival: Waiter[] = [];
  #arrivalHead = 0;
  #live = 0;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;

  constructor (opts: WaiterQueueOptions) {
    this.#opts = { now: () => performance.now(), ...opts };
  }

  get size (): number { return this.#live; }

  /** Registers a read of [offset, end). The caller has just seen that bytes are missing. */
  add (offset: number, end: number, cb: WaitCallback, signal?: AbortSignal, pid: number | null = null): void {
    if (signal?.aborted) {
      cb(new FsError('ECANCELED', 'read was cancelled'));
      return;
    }
    const w: Waiter = { offset, end, since: this.#opts.now(), pid, cb, signal: signal ?? null, onAbort: null };
    if (signal) {
      w.onAbort = () => this.#settleOne(w, new FsError('ECANCELED', 'read was cancelled'));
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
    const list = this.#byEnd;
    list.splice(firstEndAbove(list, end), 0, w);
    this.#byArrival.push(w);
    this.#live++;
    this.#arm();
    this.#opts.onSizeChange?.();
  }

  /**
   * Called after [written.start, written.end) landed on disk; `merged` is the present range
   * that now contains it. Wakes exactly the waiters whose whole range is inside `merged`;
   * returns how many it woke.
   */
  wake (written: Span, merged: Span): number {
    if (this.#live === 0) return 0;
    const list = this.#byEnd;
    const lo = firstEndAbove(list, written.start);
    const hi = firstEndAbove(list, merged.end);
    if (lo >= hi) return 0;
    let woken: Waiter[] | null = null;
    let keep = lo;
    for (let i = lo; i < hi; i++) {
      const w = list[i];
      if (w.cb === null) continue; // settled earlier: drop it here
      if (w.offset >= merged.start) {
        (woken ??= []).push(w);
      } else {
        list[keep++] = w; // a hole before `merged` still blocks it
      }
    }
    list.splice(keep, hi - keep);
    if (woken === null) return 0;
    // Settle after the list is consistent again, so a callback may register new waiters.
    for (const w of woken) this.#settle(w, null);
    this.#afterSettle();
    return woken.length;
  }

  /** Fails every waiter at once with `err`. */
  rejectAll (err: FsError): void {
    const all = this.#byArrival;
    this.#byEnd = [];
    this.#byArrival = [];
    this.#arrivalHead = 0;
    for (const w of all) if (w.cb !== null) this.#settle(w, err);
    this.#afterSettle();
  }

  /** The ranges still waited for, oldest first. */
  * pending (): IterableIterator<{ offset: number; end: number }> {
    for (let i = this.#arrivalHead; i < this.#byArrival.length; i++) {
      const w = this.#byArrival[i];
      if (w.cb !== null) yield w;
    }
  }

  list (): WaiterInfo[] {
    const now = this.#opts.now();
    const out: WaiterInfo[] = [];
    for (let i = this.#arrivalHead; i < this.#byArrival.length; i++) {
      const w = this.#byArrival[i];
      if (w.cb === null) continue;
      const due = this.#dueAt(w);
      out.push({
        offset: w.offset,
        length: w.end - w.offset,
        waitedMs: Math.round(now - w.since),
        deadlineInMs: Math.max(0, Math.round(due - now)),
        pid: w.pid,
      });
    }
    return out;
  }

  #settle (w: Waiter, err: FsError | null): void {
    const cb = w.cb!;
    w.cb = null;
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    w.signal = null;
    w.onAbort = null;
    this.#live--;
    cb(err);
  }

  #settleOne (w: Waiter, err: FsError): void {
    if (w.cb === null) return;
    this.#settle(w, err);
    this.#afterSettle();
  }

  /** Drops settled waiters from the heads and the lists once they dominate. */
  #afterSettle (): void {
    this.#opts.onSizeChange?.();
    if (this.#live === 0) {
      this.#byEnd = [];
      this.#byArrival = [];
      this.#arrivalHead = 0;
      this.#disarm();
      return;
    }
    const arrival = this.#byArrival;
    while (this.#arrivalHead < arrival.length && arrival[this.#arrivalHead].cb === null) this.#arrivalHead++;
    if (this.#arrivalHead > 1024 && this.#arrivalHead * 2 > arrival.length) {
      this.#byArrival = arrival.slice(this.#arrivalHead);
      this.#arrivalHead = 0;
    }
    if (this.#byEnd.length > 2 * this.#live + 1024) this.#byEnd = this.#byEnd.filter(w => w.cb !== null);
  }

  /** When a waiter fails if nothing serves it first: its stall or its cap, whichever is sooner. */
  #dueAt (w: Waiter): number {
    return Math.min(w.since + this.#opts.maxWaitMs, this.#opts.lastProgressAt(w.offset, w.end, w.since) + this.#opts.stallMs);
  }

  /** Keeps the one timer at or before `at`; a later deadline never moves it. */
  #arm (at?: number): void {
    if (this.#live === 0) return this.#disarm();
    const due = at ?? this.#dueAt(this.#byArrival[this.#byArrival.length - 1]);
    if (this.#timer !== null && this.#timerAt <= due) return;
    this.#disarm();
    this.#timerAt = due;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, due - this.#opts.now()));
  }

  #disarm (): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  /** Fails every waiter whose stall or cap has passed, then re-arms at the next deadline. */
  #onTimer (): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = this.#opts.now();
    let next = Infinity;
    const expired: Array<[Waiter, FsError]> = [];
    let stalled = false;
    for (let i = this.#arrivalHead; i < this.#byArrival.length; i++) {
      const w = this.#byArrival[i];
      if (w.cb === null) continue;
      const idleMs = now - this.#opts.lastProgressAt(w.offset, w.end, w.since);
      if (idleMs >= this.#opts.stallMs) {
        stalled = true;
        expired.push([w, new FsError('ETIMEDOUT', `download stalled: no data from the origin for ${Math.round(idleMs / 1000)} s`)]);
      } else if (now - w.since >= this.#opts.maxWaitMs) {
        expired.push([w, new FsError('ETIMEDOUT', `read waited ${Math.round(this.#opts.maxWaitMs / 1000)} s (read-max-wait) for data`)]);
      } else {
        next = Math.min(next, this.#dueAt(w));
      }
    }
    if (stalled) this.#opts.onStalled?.();
    for (const [w, err] of expired) this.#settle(w, err);
    if (expired.length > 0) this.#afterSettle();
    if (this.#live > 0) this.#arm(next);
  }
}

/** Index of the first waiter whose end is > value. */
function firstEndAbove (list: Waiter[], value: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].end <= value) lo = mid + 1; else hi = mid;
  }
  return lo;
}
