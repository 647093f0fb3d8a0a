import { FsError } from '../../agent/errors';
import { DownloadScheduler } from '../../agent/store/download-scheduler';
import type { ScheduledDownload, ScheduledFile } from '../../agent/store/scheduler-contract';
import type { DownloadKind } from '../../agent/store/download-slots';
import { DownloadSlots } from '../../agent/store/download-slots';
import { RangeSet } from '../../agent/store/range-set';

/** Lets every pending promise callback and setImmediate (DownloadSlots' wake-ups) run. */
export async function settle (): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve));
}

/**
 * A download that moves only when the test says so, and moves as the real Downloader does:
 * each attempt starts at the first missing byte of its claim and asks for bytes up to the
 * next present byte; it receives them in order, stops at its limit (which may shrink under
 * it) and pauses at its read-ahead bound. Every byte it receives is counted, so a byte
 * fetched twice (two claims overlapping) shows.
 */
export class FakeDownload implements ScheduledDownload {
  kind: DownloadKind;
  position: number;
  limit: number;
  allowedEnd: number;
  lastProgressAt = performance.now();
  lastByteAt = -Infinity;
  aborted = false;
  settled = false;
  readonly #h: SchedulerHarness;
  #attemptEnd: number | null = null;
  #resolve!: () => void;
  #reject!: (err: FsError) => void;

  constructor (h: SchedulerHarness, kind: DownloadKind, from: number, limit: number, allowedEnd: number) {
    this.#h = h;
    this.kind = kind;
    this.position = from;
    this.limit = limit;
    this.allowedEnd = allowedEnd;
  }

  get running (): boolean { return !this.settled && !this.aborted; }

  setLimit (end: number): void { this.limit = Math.max(this.position, Math.min(this.limit, end)); }
  allowUpTo (end: number): void { this.allowedEnd = Math.max(this.allowedEnd, end); }
  retryNow (): void {}

  abort (): void {
    if (this.settled) return;
    this.aborted = true;
    this.#settle(new FsError('ECANCELED', 'download was cancelled'));
  }

  run (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Receives up to `n` bytes from the origin; returns how many arrived. */
  receive (n: number): number {
    if (!this.running) return 0;
    const file = this.#h;
    if (this.#attemptEnd === null) {
      const start = file.present.firstMissing(this.position, file.size);
      if (start < 0 || start >= this.limit) {
        this.#settle(null);
        return 0;
      }
      this.position = start;
      if (start >= this.allowedEnd) return 0; // paused at the bound, no connection
      this.#attemptEnd = Math.min(this.limit, file.present.nextPresent(start, file.size));
    }
    const end = Math.min(this.position + n, this.#attemptEnd, this.limit, this.allowedEnd);
    const from = this.position;
    if (end > from) {
      file.received(from, end);
      this.position = end;
      this.lastProgressAt = this.lastByteAt = performance.now();
    }
    if (this.position >= this.#attemptEnd) this.#attemptEnd = null;
    const next = file.present.firstMissing(this.position, file.size);
    if (this.position >= this.limit || next < 0 || next >= this.limit) this.#settle(null);
    return end - from;
  }

  /** The origin failed for good (the real Downloader gives up only after its retries). */
  fail (err = new FsError('EIO', 'origin answered HTTP 404')): void {
    this.#settle(err);
  }

  #settle (err: FsError | null): void {
    if (this.settled) return;
    this.settled = true;
    if (err === null) this.#resolve(); else this.#reject(err);
  }
}

export interface Read {
  readonly offset: number;
  readonly end: number;
  /** null while waiting; 'ok' once served; the error once failed. */
  outcome: 'ok' | FsError | null;
}

export interface HarnessOptions {
  slots?: DownloadSlots;
  maxPerFile?: number;
  fillMaxBytes?: number;
  acceptRanges?: boolean;
  bytesPerSecond?: number;
  /** The scheduler's clock (ms); performance.now by default. */
  now?: () => number;
}

/**
 * One file as TempFileStore drives its scheduler, with no temp file and no network: the
 * same read path (present? read-ahead : failed? EIO : demand + wait), the same state
 * changes from the scheduler's events, and reads woken when their range is present.
 */
export class SchedulerHarness implements ScheduledFile {
  readonly size: number;
  readonly present = new RangeSet();
  /** Every byte some download received from the origin, and how many were received twice. */
  readonly fetched = new RangeSet();
  fetchedTwice = 0;
  readonly slots: DownloadSlots;
  readonly scheduler: DownloadScheduler;
  readonly downloads: FakeDownload[] = [];
  readonly reads: Read[] = [];
  state: 'idle' | 'downloading' | 'complete' | 'cancelled' | 'error' = 'idle';
  bytesPerSecond: number;
  /** The file's last byte; a test may set it back to make the file look stalled. */
  lastProgressAt = performance.now();
  /** Its reads failed for a stall; a test may set it. */
  readsStalled = false;

  constructor (size: number, opts: HarnessOptions = {}) {
    this.size = size;
    this.slots = opts.slots ?? new DownloadSlots(32);
    this.bytesPerSecond = opts.bytesPerSecond ?? 0;
    this.scheduler = new DownloadScheduler(this, {
      slots: this.slots,
      maxPerFile: opts.maxPerFile ?? 4,
      fillMaxBytes: opts.fillMaxBytes ?? 0,
      acceptRanges: opts.acceptRanges ?? true,
      now: opts.now,
      createDownload: (kind, from, limit, allowedEnd) => {
        const d = new FakeDownload(this, kind, from, limit, allowedEnd);
        this.downloads.push(d);
        return d;
      },
      events: {
        started: () => { this.state = 'downloading'; },
        failed: err => this.#failAll('error', err),
        complete: () => { this.state = 'complete'; },
        idle: () => { if (this.state !== 'complete') this.state = 'idle'; },
      },
    });
  }

  firstMissing (from: number, to: number): number { return this.present.firstMissing(from, to); }
  get presentBytes (): number { return this.present.bytes; }
  waitingReads (): Read[] { return this.reads.filter(r => r.outcome === null); }

  /** Running downloads (not ended, not stopped). */
  get running (): FakeDownload[] { return this.downloads.filter(d => d.running); }

  /** Claims of the running downloads, sorted. */
  claims (): Array<[number, number]> {
    return this.running.map(d => [d.position, d.limit] as [number, number]).sort((a, b) => a[0] - b[0]);
  }

  /** A FUSE read of [offset, offset+len), with read-ahead to `aheadEnd`. */
  read (offset: number, len: number, aheadEnd = 0): Read {
    const end = Math.min(this.size, offset + len);
    const ahead = Math.min(this.size, Math.max(end, aheadEnd));
    const r: Read = { offset, end, outcome: null };
    if (this.present.contains(offset, end)) {
      if (ahead > end) this.scheduler.readAhead(end, ahead);
      r.outcome = 'ok';
    } else if (this.state === 'cancelled' || this.state === 'error') {
      r.outcome = new FsError('EIO', this.state);
    } else {
      this.scheduler.demand(this.present.firstMissing(offset, end), ahead);
    }
    this.reads.push(r); // after the scheduler, as the store registers its waiter
    return r;
  }

  open (all = false): void {
    if (this.state === 'cancelled') return;
    if (this.state === 'error') this.state = this.scheduler.active > 0 ? 'downloading' : 'idle';
    this.scheduler.start(all);
  }

  cancel (): void {
    if (this.state === 'complete') return;
    this.scheduler.halt();
    this.#failAll('cancelled', new FsError('ECANCELED', 'cancelled'));
  }

  resume (): void {
    if (this.state === 'cancelled' || this.state === 'error') this.state = this.scheduler.active > 0 ? 'downloading' : 'idle';
    this.scheduler.resume();
    this.open();
  }

  /** Called by a FakeDownload: bytes arrived and are written. */
  received (start: number, end: number): void {
    const before = this.fetched.bytes;
    this.fetched.add(start, end);
    this.fetchedTwice += (end - start) - (this.fetched.bytes - before);
    this.present.add(start, end);
    this.lastProgressAt = performance.now();
    let woken = 0;
    for (const r of this.reads) {
      if (r.outcome === null && this.present.contains(r.offset, r.end)) {
        r.outcome = 'ok';
        woken++;
      }
    }
    if (woken > 0) this.scheduler.readsServed();
  }

  #failAll (state: 'cancelled' | 'error', err: FsError): void {
    this.state = state;
    for (const r of this.reads) if (r.outcome === null) r.outcome = err;
  }
}
