import type { Dispatcher } from 'undici';
import { FsError, toFsError } from '../errors';
import { dropBody, failureDetail, headerValue, sendRequest, type OriginResponse } from '../origin/http-client';
import {
  ifRangeValue,
  OriginChangedError,
  validatorsChanged,
  type OriginInfo,
  type RequestHeaders,
} from '../origin/origin-info';
import { SourceUnavailableError, type FileSource } from '../origin/file-source';
import { backoffMs, isRetryableError, isRetryableStatus, MAX_ATTEMPTS_WITHOUT_PROGRESS } from '../origin/retry-policy';
import { validators } from '../origin/probe';
import { refusalError } from '../origin/url-expiry';
import { waitForWake } from '../wait-for-wake';
import type { ScheduledDownload } from './scheduler-contract';
import type { BandwidthLimiter } from './bandwidth-limiter';
import type { DownloadKind } from './download-slots';

/**
 * Bytes received but not yet written that make the downloader wait for the disk. Bounds the
 * memory one download holds (16 downloads hold 16 MiB at most); writes in between coalesce
 * whatever arrived during the last one.
 */
const WRITE_HIGH_WATER_BYTES = 1024 * 1024;
/**
 * A download that has reached its read-ahead bound keeps its connection this long in case
 * the reader catches up, then drops it (and reconnects when the bound moves), so a paused
 * player holds no connection, and the origin's idle timeout never turns a pause into errors.
 */
const PAUSE_DROP_MS = 3000;

/** What a downloader needs of the store it fills; nothing more, so each can be read alone. */
export interface DownloadTarget {
  readonly size: number;
  /** First missing byte in [from, size), or -1 when the rest of the file is present. */
  firstMissing (from: number): number;
  /** Start of the next present range at or after pos, or size: where a download may stop. */
  nextPresent (pos: number): number;
  /** Writes bytes at pos; resolves once they are in the file and visible to readers. May wait for cache space. */
  write (chunks: Buffer[], pos: number, length: number, signal: AbortSignal): Promise<void>;
}

export interface DownloaderOptions {
  /** Gives each attempt its URL and headers (fresh ones, for a file with a url-command). */
  source: FileSource;
  origin: OriginInfo;
  dispatcher: Dispatcher;
  /** An attempt whose body goes quiet this long is dropped and retried. */
  stallTimeoutMs: number;
  /** Told of each failed attempt that will be retried, with how many in a row brought no byte. */
  onRetry?: (err: FsError, delayMs: number, withoutProgress: number) => void;
  /** The rate caps: each piece of a body is paid for before the next is read. */
  limiter?: BandwidthLimiter;
}

class RetryableStatus extends Error {
  constructor (readonly status: number, readonly retryAfter: string | null) {
    super(`origin answered HTTP ${status}`);
  }
}

/**
 * One streaming download into a store, over its claim [position, limit): it fetches the
 * missing bytes of the claim in order, skipping bytes already present, and ends at the
 * limit (which the store may pull in when it gives the rest of the claim to a new download
 * for a far seek). It runs no further ahead than `allowedEnd` (the read-ahead bound), and
 * retries dropped or stalled connections with Range + If-Range so that two versions of the
 * file never mix.
 */
export class Downloader implements ScheduledDownload {
  kind: DownloadKind;
  readonly #target: DownloadTarget;
  readonly #opts: DownloaderOptions;
  readonly #abort = new AbortController();
  /** Cuts a back-off pause short (resume: "retry now"). */
  #skipPause: (() => void) | null = null;
  /** Wakes a download waiting at its read-ahead bound. */
  #windowMoved: (() => void) | null = null;
  #position: number;
  #limit: number;
  #allowedEnd: number;
  #receivedThisAttempt = 0;
  /**
   * Monotonic time of this download's last byte on disk, of its start, or of the moment it
   * was let go on after waiting at its read-ahead bound: the stall clock of the reads it
   * serves. A download that waited for its reader has not stalled.
   */
  lastProgressAt = performance.now();
  /** Monotonic time of its last byte on disk; -Infinity before the first. */
  lastByteAt = -Infinity;

  constructor (target: DownloadTarget, opts: DownloaderOptions, kind: DownloadKind, from: number, limit: number, allowedEnd: number) {
    this.#target = target;
    this.#opts = opts;
    this.kind = kind;
    this.#position = from;
    this.#limit = limit;
    this.#allowedEnd = allowedEnd;
  }

  /** The offset the download will write next. */
  get position (): number { return this.#position; }
  /** End (exclusive) of the bytes this download claims. */
  get limit (): number { return this.#limit; }

  /** Gives up the claim from `end` on (another download takes it). */
  setLimit (end: number): void {
    this.#limit = Math.max(this.#position, Math.min(this.#limit, end));
  }

  /** Moves the read-ahead bound forward (never back). */
  allowUpTo (end: number): void {
    if (end <= this.#allowedEnd) return;
    this.#allowedEnd = end;
    this.#windowMoved?.();
  }

  abort (): void {
    this.#abort.abort();
  }

  /** Ends a back-off pause now, so the next attempt starts at once. */
  retryNow (): void { this.#skipPause?.(); }

  /** Resolves when no byte of the claim is missing; rejects with FsError. */
  async run (): Promise<void> {
    const signal = this.#abort.signal;
    let failures = 0;
    for (;;) {
      if (signal.aborted) throw new FsError('ECANCELED', 'download was cancelled');
      const start = this.#target.firstMissing(this.#position);
      if (start < 0 || start >= this.#limit) return;
      this.#position = start;
      if (start >= this.#allowedEnd) {
        await this.#waitForWindow(Infinity); // paused with no connection open
        continue;
      }
      this.#receivedThisAttempt = 0;
      try {
        await this.#attempt(start);
        failures = 0;
      } catch (err) {
        if (signal.aborted) throw new FsError('ECANCELED', 'download was cancelled');
        const retryable = err instanceof RetryableStatus || err instanceof SourceUnavailableError || isRetryableError(err);
        // A TLS or proxy refusal is final: said in words a user can act on (failureDetail).
        if (!retryable) throw err instanceof FsError ? err : new FsError('EIO', failureDetail(err), { cause: err });
        failures = this.#receivedThisAttempt > 0 ? 1 : failures + 1;
        const reason = toFsError(err);
        if (failures >= MAX_ATTEMPTS_WITHOUT_PROGRESS) {
          throw new FsError('EIO', `download failed after ${failures} attempts without progress: ${reason.message}`, { cause: err });
        }
        const delay = backoffMs(failures, err instanceof RetryableStatus ? err.retryAfter : null);
        this.#opts.onRetry?.(reason, delay, failures);
        await this.#pause(delay);
        if (signal.aborted) throw new FsError('ECANCELED', 'download was cancelled');
      }
    }
  }

  async #pause (ms: number): Promise<void> {
    await waitForWake(ms, this.#abort.signal, wake => { this.#skipPause = wake; });
    this.#skipPause = null;
  }

  /** Waits until the read-ahead bound passes the position (or the download stops), at most `ms`; false if it timed out. */
  async #waitForWindow (ms: number): Promise<boolean> {
    if (this.#position < this.#allowedEnd || this.#abort.signal.aborted) return true;
    const how = await waitForWake(ms, this.#abort.signal, wake => { this.#windowMoved = wake; });
    this.#windowMoved = null;
    if (how === 'timeout') return false;
    this.lastProgressAt = performance.now();
    return true;
  }

  async #attempt (start: number): Promise<void> {
    const { origin, source } = this.#opts;
    const size = this.#target.size;
    const endpoint = await source.endpoint(this.#abort.signal);
    const headers: RequestHeaders = { ...endpoint.headers };
    let end = size;
    if (origin.acceptRanges) {
      end = Math.min(this.#limit, this.#target.nextPresent(start));
      headers.range = `bytes=${start}-${end - 1}`;
      const ifRange = ifRangeValue(origin);
      if (ifRange !== null) headers['if-range'] = ifRange;
    }
    const res = await sendRequest(this.#opts.dispatcher, endpoint.url, {
      method: 'GET', headers, bodyTimeoutMs: this.#opts.stallTimeoutMs, signal: this.#abort.signal,
    });
    let bodyStart: number;
    if (res.statusCode === 200 || res.statusCode === 206) source.accepted(endpoint);
    if (res.statusCode === 206) {
      bodyStart = this.#checkPartial(res, start);
    } else if (res.statusCode === 200) {
      this.#checkFull(res);
      bodyStart = 0;
      end = size;
    } else {
      dropBody(res);
      if (isRetryableStatus(res.statusCode)) throw new RetryableStatus(res.statusCode, headerValue(res.headers, 'retry-after'));
      // Credentials that lapsed: a source that can mint fresh ones is asked at once.
      if ((res.statusCode === 401 || res.statusCode === 403) && source.refused(endpoint)) throw new RetryableStatus(res.statusCode, '0');
      if (res.statusCode === 416) {
        throw new OriginChangedError(`origin refused range ${start}-${end - 1} (HTTP 416): the file changed size at the origin`);
      }
      throw refusalError(res.statusCode, endpoint.url, endpoint.headers);
    }
    await this.#stream(res, bodyStart, start, end);
  }

  /** Checks a 206 answer is the range we asked for, of the version we hold; returns its start. */
  #checkPartial (res: OriginResponse, start: number): number {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(res.headers, 'content-range') ?? '');
    const v = validators(res);
    let problem: FsError | null = null;
    if (m === null) problem = new FsError('EIO', 'origin sent a partial answer without a valid Content-Range');
    else if (Number(m[1]) !== start) problem = new FsError('EIO', `origin sent bytes from ${m[1]} when asked for ${start}`);
    else if (m[3] !== '*' && Number(m[3]) !== this.#target.size) {
      problem = new OriginChangedError(`the file changed size at the origin (${this.#target.size} -> ${m[3]})`);
    } else if (validatorsChanged(this.#opts.origin, v.etag, v.lastModified)) {
      problem = new OriginChangedError('the file changed at the origin (new ETag or Last-Modified)');
    }
    if (problem !== null) {
      dropBody(res);
      throw problem;
    }
    return start;
  }

  /** A 200 is the whole file: an origin without Range, or one whose version changed (If-Range failed). */
  #checkFull (res: OriginResponse): void {
    const v = validators(res);
    const length = headerValue(res.headers, 'content-length');
    let problem: string | null = null;
    if (validatorsChanged(this.#opts.origin, v.etag, v.lastModified)) {
      problem = 'the file changed at the origin (new ETag or Last-Modified)';
    } else if (length !== null && Number(length) !== this.#target.size) {
      problem = `the file changed size at the origin (${this.#target.size} -> ${length})`;
    }
    if (problem !== null) {
      dropBody(res);
      throw new OriginChangedError(problem);
    }
  }

  /**
   * Streams the body, dropping bytes before `from` (a 200 to a resumed download) and writing
   * the rest; stops early, without error, at the claim's limit or when paused too long at
   * the read-ahead bound.
   */
  async #stream (res: OriginResponse, bodyStart: number, from: number, end: number): Promise<void> {
    let pos = bodyStart;
    let stoppedEarly = false;
    const writer = new CoalescingWriter(this.#target, from, this.#abort.signal, end => {
      this.lastProgressAt = this.lastByteAt = performance.now();
      this.#advance(end);
    });
    try {
      for await (const data of res.body) {
        let chunk = data as Buffer;
        if (pos < from) {
          const skip = Math.min(chunk.length, from - pos);
          pos += skip;
          if (skip === chunk.length) continue;
          chunk = chunk.subarray(skip);
        }
        if (pos + chunk.length > end) {
          throw new FsError('EIO', `origin sent more bytes than the ${this.#target.size} it announced`);
        }
        if (pos + chunk.length > this.#limit) chunk = chunk.subarray(0, Math.max(0, this.#limit - pos));
        if (chunk.length > 0) {
          pos += chunk.length;
          writer.push(chunk);
          // Under a cap, the next piece is read only once this one is paid for: TCP slows the origin.
          const paid = this.#opts.limiter?.take(chunk.length, this.kind, this.#abort.signal);
          if (paid != null) await paid;
        }
        if (pos >= this.#limit) { stoppedEarly = true; break; }
        if (writer.buffered >= WRITE_HIGH_WATER_BYTES || pos >= this.#allowedEnd) await writer.drain();
        if (pos >= this.#allowedEnd && !await this.#waitForWindow(PAUSE_DROP_MS)) { stoppedEarly = true; break; }
      }
    } finally {
      // No write may still be running when the attempt ends: the store may close its file next.
      await writer.settle();
      dropBody(res);
    }
    await writer.drain();
    if (pos < end && !stoppedEarly) throw new ShortBody(end - pos);
  }

  #advance (to: number): void {
    this.#receivedThisAttempt += to - this.#position;
    this.#position = to;
  }
}

/** A body that ended before its announced length: retried as a dropped connection. */
class ShortBody extends Error {
  readonly code = 'ECONNRESET';
  constructor (missing: number) { super(`origin closed the body ${missing} bytes early`); }
}

/**
 * Writes chunks in order at increasing offsets; while one write runs, later chunks gather
 * and go in the next write together, so a fast origin costs few syscalls and a slow one
 * still reaches readers as each chunk lands.
 */
class CoalescingWriter {
  readonly #target: DownloadTarget;
  readonly #signal: AbortSignal;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #written: number;
  #running: Promise<void> | null = null;
  #error: unknown = null;

  /** Told the new end of what is on disk after each write. */
  readonly #onWritten: (end: number) => void;

  constructor (target: DownloadTarget, at: number, signal: AbortSignal, onWritten: (end: number) => void) {
    this.#target = target;
    this.#written = at;
    this.#signal = signal;
    this.#onWritten = onWritten;
  }

  get buffered (): number { return this.#pendingBytes; }

  push (chunk: Buffer): void {
    if (this.#error !== null) throw this.#error;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#running ??= this.#pump();
  }

  /** Waits until everything pushed is written; throws the write's error. */
  async drain (): Promise<void> {
    while (this.#running !== null) await this.#running;
    if (this.#error !== null) throw this.#error;
  }

  /** Like drain, but never throws: for clean-up paths. */
  async settle (): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  async #pump (): Promise<void> {
    try {
      while (this.#pending.length > 0 && this.#error === null) {
        const chunks = this.#pending;
        const length = this.#pendingBytes;
        this.#pending = [];
        this.#pendingBytes = 0;
        await this.#target.write(chunks, this.#written, length, this.#signal);
        this.#written += length;
        this.#onWritten(this.#written);
      }
    } catch (err) {
      this.#error = err;
    } finally {
      this.#running = null;
    }
  }
}
