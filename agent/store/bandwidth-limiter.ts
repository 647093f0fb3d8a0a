import { FsError } from '../errors';
import type { DownloadKind } from './download-slots';

/**
 * How far ahead of its rate a bucket may run, in seconds of that rate: enough that one
 * socket read (64 KiB) never waits at a few MB/s, small enough that the cap holds within a
 * few percent over seconds.
 */
const BURST_SECONDS = 0.1;
const MIN_BURST_BYTES = 128 * 1024;
/**
 * The lowest cap: a download waits for its next piece (up to 64 KiB) as long as the cap takes
 * to pay for it, and a read waiting on it fails after --read-timeout without a byte; at 64
 * KiB/s a piece takes a second. Below, reads under the cap would time out.
 */
export const MIN_RATE = 64 * 1024;

/** Rates in bytes per second; null: no cap. */
export interface BandwidthLimits {
  /** Every download together. */
  total: number | null;
  /** Downloads no program waits on (whole-file fills, prefetch, resumed downloads), together. */
  background: number | null;
}

class Bucket {
  rate: number | null = null;
  #tokens = 0;
  #at = 0;

  constructor (readonly now: () => number) {}

  set (rate: number | null): void {
    this.refill();
    const was = this.rate;
    this.rate = rate;
    // A new cap starts with a full burst; a changed one keeps its balance (debt included).
    if (rate !== null) this.#tokens = was === null ? this.#burst() : Math.min(this.#tokens, this.#burst());
  }

  refill (): void {
    const now = this.now();
    if (this.rate !== null) this.#tokens = Math.min(this.#burst(), this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
  }

  /** Milliseconds until this bucket can serve a take (0: now). */
  waitMs (): number {
    if (this.rate === null || this.#tokens >= 0) return 0;
    return Math.ceil((-this.#tokens / this.rate) * 1000);
  }

  spend (bytes: number): void {
    if (this.rate !== null) this.#tokens -= bytes;
  }

  #burst (): number {
    return Math.max(MIN_BURST_BYTES, (this.rate ?? 0) * BURST_SECONDS);
  }
}

interface Pending {
  bytes: number;
  kind: DownloadKind;
  resolve: () => void;
  reject: (err: FsError) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/**
 * The agent's download rate caps: token buckets every download takes its bytes from before
 * it reads the next piece of its body, so an origin is slowed by TCP's own flow control. A
 * take that finds no tokens waits in line; downloads a program waits on (demand) are served
 * before any background one (fill), so under a cap a reader gets the link and background
 * work gets what is left. A bucket may run into debt by one take: a 64 KiB read is never
 * split, and the next waits until the debt is paid.
 */
export class BandwidthLimiter {
  readonly #total: Bucket;
  readonly #background: Bucket;
  readonly #queues: Record<DownloadKind, Pending[]> = { demand: [], fill: [] };
  #timer: NodeJS.Timeout | null = null;

  constructor (limits: BandwidthLimits, now: () => number = () => performance.now()) {
    this.#total = new Bucket(now);
    this.#background = new Bucket(now);
    this.set(limits);
  }

  get limits (): BandwidthLimits { return { total: this.#total.rate, background: this.#background.rate }; }

  set (limits: BandwidthLimits): void {
    this.#total.set(limits.total);
    this.#background.set(limits.background);
    this.#pump();
  }

  /**
   * Takes `bytes` for a download of `kind`: null when it may go on now, else a promise that
   * resolves when it may (rejects with ECANCELED if `signal` aborts first).
   */
  take (bytes: number, kind: DownloadKind, signal: AbortSignal): Promise<void> | null {
    const capped = this.#total.rate !== null || (kind === 'fill' && this.#background.rate !== null);
    if (!capped) return null;
    if (this.#queues.demand.length === 0 && (kind === 'demand' || this.#queues.fill.length === 0) && this.#canServe(kind)) {
      this.#spend(bytes, kind);
      return null;
    }
    return new Promise((resolve, reject) => {
      const entry: Pending = {
        bytes,
        kind,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const q = this.#queues[kind];
          const i = q.indexOf(entry);
          if (i >= 0) q.splice(i, 1);
          reject(new FsError('ECANCELED', 'download was cancelled'));
          this.#pump();
        },
      };
      if (signal.aborted) return entry.onAbort();
      signal.addEventListener('abort', entry.onAbort, { once: true });
      this.#queues[kind].push(entry);
      this.#pump();
    });
  }

  close (): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const q of Object.values(this.#queues)) {
      for (const p of q.splice(0)) {
        p.signal.removeEventListener('abort', p.onAbort);
        p.reject(new FsError('ESHUTDOWN', 'agent is stopping'));
      }
    }
  }

  #canServe (kind: DownloadKind): boolean {
    this.#total.refill();
    this.#background.refill();
    return this.#total.waitMs() === 0 && (kind === 'demand' || this.#background.waitMs() === 0);
  }

  #spend (bytes: number, kind: DownloadKind): void {
    this.#total.spend(bytes);
    if (kind === 'fill') this.#background.spend(bytes);
  }

  /** Serves waiting takes in order, demand first; arms a timer for when the next can be served. */
  #pump (): void {
    if (this.#timer !== null) { clearTimeout(this.#timer); this.#timer = null; }
    for (;;) {
      const kind: DownloadKind | null = this.#queues.demand.length > 0 ? 'demand' : this.#queues.fill.length > 0 ? 'fill' : null;
      if (kind === null) return;
      // Background waits behind any demand take: strict priority, so a reader is never slowed for a fill.
      const next = this.#queues[kind][0];
      if (!this.#canServe(kind)) {
        const ms = Math.max(this.#total.waitMs(), kind === 'fill' ? this.#background.waitMs() : 0);
        this.#timer = setTimeout(() => { this.#timer = null; this.#pump(); }, ms);
        return;
      }
      this.#queues[kind].shift();
      next.signal.removeEventListener('abort', next.onAbort);
      this.#spend(next.bytes, kind);
      next.resolve();
    }
  }
}

/** A rate as parseRate reads it back: 8M, 512K, or bytes. */
export function rateText (bytesPerSecond: number): string {
  for (const [unit, power] of [['G', 3], ['M', 2], ['K', 1]] as const) {
    if (bytesPerSecond % 1024 ** power === 0) return `${bytesPerSecond / 1024 ** power}${unit}`;
  }
  return String(bytesPerSecond);
}

/**
 * A rate as a user writes it, in bytes per second: `off`, a number of bytes, or with a
 * binary unit as rclone reads --bwlimit (`512K`, `8M`, `1.5G`: KiB, MiB, GiB per second;
 * `8MiB` and `8M/s` too). Throws a message without the setting's name.
 */
export function parseRate (raw: unknown): number | null {
  if (raw === null || raw === 'off' || raw === 0 || raw === '0') return null;
  const m = typeof raw === 'number' ? [String(raw), String(raw), ''] : /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:\/s)?\s*$/i.exec(String(raw));
  const n = m === null ? NaN : Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
  if (!Number.isFinite(n) || n < MIN_RATE) {
    throw new Error(`must be off or a rate of at least 64K such as 512K, 8M or 1.5G (bytes per second; got ${JSON.stringify(raw)})`);
  }
  return Math.floor(n);
}
