import fs from 'node:fs';
import { promisify } from 'node:util';
import type { Dispatcher } from 'undici';
import { FsError } from '../errors';
import type { OriginInfo, RequestHeaders } from '../origin/origin-info';
import { Downloader } from './downloader';
import { RangeSet, type Span } from './range-set';
import { WaiterQueue, type WaiterInfo } from './waiter-queue';

const openFile = promisify(fs.open);
const ftruncate = promisify(fs.ftruncate);
const closeFile = promisify(fs.close);
const writev = promisify(fs.writev);

export type FileState = 'idle' | 'downloading' | 'stalled' | 'complete' | 'cancelled' | 'error';

/** A read's answer: bytes placed in the caller's buffer, or the error to surface. */
export type ReadCallback = (err: FsError | null, bytes: number) => void;

export interface StoreSource {
  name: string;
  url: string;
  headers: RequestHeaders;
  origin: OriginInfo;
}

export interface StoreOptions {
  dispatcher: Dispatcher;
  /** --read-timeout: a waiting read fails once the download received nothing for this long. */
  readTimeoutMs: number;
  /** --read-max-wait: a waiting read fails after this long whatever happens. */
  readMaxWaitMs: number;
  /** A download attempt whose body goes quiet this long is dropped and retried. */
  downloadStallMs: number;
  /** Told of state changes and retries, for logs and status. */
  observer?: StoreObserver;
}

export interface StoreObserver {
  onStateChange? (store: TempFileStore, state: FileState, err: FsError | null): void;
  onRetry? (store: TempFileStore, err: FsError, delayMs: number, attempt: number): void;
}

/**
 * One remote file: a sparse temp file, the ranges of it that are present, the reads waiting
 * for missing ranges, and the download that fills it. Every open handle of the file shares
 * the one store.
 *
 * Fields: `source`, `path` and the descriptor are set once; everything else is changed only
 * from the event loop, by reads, by the download's writes and by cancel/close.
 */
export class TempFileStore {
  readonly source: StoreSource;
  readonly path: string;
  readonly size: number;
  readonly #fd: number;
  readonly #opts: StoreOptions;
  readonly #present = new RangeSet();
  readonly #waiters: WaiterQueue;
  #download: Downloader | null = null;
  #state: FileState = 'idle';
  #error: FsError | null = null;
  #lastProgressAt = performance.now();
  /** Reads and writes of the temp file in flight: the descriptor is closed only at zero. */
  #diskIo = 0;
  #onDiskIdle: (() => void) | null = null;
  #closing: Promise<void> | null = null;
  /** Open FUSE handles; maintained by the fs layer. */
  openHandles = 0;

  private constructor (source: StoreSource, path: string, fd: number, opts: StoreOptions) {
    this.source = source;
    this.path = path;
    this.size = source.origin.size;
    this.#fd = fd;
    this.#opts = opts;
    this.#waiters = new WaiterQueue({
      stallMs: opts.readTimeoutMs,
      maxWaitMs: opts.readMaxWaitMs,
      lastProgressAt: () => this.#lastProgressAt,
    });
    if (this.size === 0) this.#state = 'complete';
  }

  /** Creates (or reuses) the sparse temp file at `path`, owner-only, at the file's full size. */
  static async create (source: StoreSource, path: string, opts: StoreOptions, present: Array<[number, number]> = []): Promise<TempFileStore> {
    const fd = await openFile(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    try {
      if (present.length === 0) await ftruncate(fd, 0); // no claim on old bytes: start empty
      await ftruncate(fd, source.origin.size);
    } catch (err) {
      await closeFile(fd).catch(() => {});
      throw err;
    }
    const store = new TempFileStore(source, path, fd, opts);
    for (const [s, e] of present) store.#present.add(s, e);
    if (store.#present.bytes === store.size) store.#state = 'complete';
    return store;
  }

  get state (): FileState {
    if (this.#state === 'downloading' && performance.now() - this.#lastProgressAt >= this.#opts.readTimeoutMs) return 'stalled';
    return this.#state;
  }

  get lastError (): FsError | null { return this.#error; }
  get presentBytes (): number { return this.#present.bytes; }
  get waiterCount (): number { return this.#waiters.size; }
  get downloadPosition (): number | null { return this.#download?.position ?? null; }
  ranges (): Array<[number, number]> { return this.#present.toArray(); }
  waiters (): WaiterInfo[] { return this.#waiters.list(); }

  /**
   * The FUSE read path: answers from disk when [pos, pos+len) is present, otherwise waits for
   * it (bounded by the deadlines) and then reads straight into `buf`. `buf` is never touched
   * after `cb` has been called.
   */
  read (buf: Buffer, len: number, pos: number, cb: ReadCallback, signal?: AbortSignal, pid?: number): void {
    if (this.#closing !== null) return cb(new FsError('EIO', `${this.source.name} was closed`), 0);
    if (pos >= this.size || len <= 0) return cb(null, 0);
    const end = Math.min(this.size, pos + len);
    if (this.#present.contains(pos, end)) return this.#readDisk(buf, pos, end - pos, cb);
    if (this.#state === 'cancelled' || this.#state === 'error') {
      return cb(new FsError('EIO', `${this.source.name}: ${this.#error?.message ?? this.#state}`), 0);
    }
    this.startDownload();
    // Same synchronous turn as the check above: no write can slip in between.
    this.#waiters.add(pos, end, err => {
      if (err !== null) return cb(err, 0);
      if (this.#closing !== null) return cb(new FsError('EIO', `${this.source.name} was closed`), 0);
      this.#readDisk(buf, pos, end - pos, cb);
    }, signal, pid);
  }

  /** Starts the download if none runs and bytes are missing; a failed (not cancelled) file is retried. */
  startDownload (): void {
    if (this.#download !== null || this.#closing !== null || this.#state === 'cancelled') return;
    if (this.#present.firstMissing(0, this.size) < 0) return;
    this.#error = null;
    this.#lastProgressAt = performance.now();
    const download = new Downloader(this, {
      url: this.source.url,
      headers: this.source.headers,
      origin: this.source.origin,
      dispatcher: this.#opts.dispatcher,
      stallTimeoutMs: this.#opts.downloadStallMs,
      onRetry: (err, delayMs, attempt) => this.#opts.observer?.onRetry?.(this, err, delayMs, attempt),
    });
    this.#download = download;
    this.#setState('downloading', null);
    download.run().then(
      () => this.#downloadEnded(download, null),
      (err: FsError) => this.#downloadEnded(download, err),
    );
  }

  /** Stops the download and fails every waiting read at once; later reads of missing bytes fail at once. */
  cancel (reason = 'download cancelled'): void {
    if (this.#state === 'complete') return;
    this.#stopDownload();
    this.#fail('cancelled', new FsError('ECANCELED', reason));
  }

  /** Clears a cancel or an error and starts downloading again. */
  resume (): void {
    if (this.#state === 'cancelled' || this.#state === 'error') this.#setState('idle', null);
    this.startDownload();
  }

  /** Fails all waiters, stops the download, and closes the file once no disk I/O is in flight. */
  close (reason = 'file store closed'): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close (reason: string): Promise<void> {
    this.#stopDownload();
    this.#waiters.rejectAll(new FsError('EIO', reason));
    if (this.#diskIo > 0) await new Promise<void>(resolve => { this.#onDiskIdle = resolve; });
    await closeFile(this.#fd);
  }

  /** Detaches the running download; its end is then ignored and its late writes refused. */
  #stopDownload (): void {
    const download = this.#download;
    this.#download = null;
    download?.abort();
  }

  // DownloadTarget: what the downloader may ask of the store.

  firstMissing (from: number): number {
    return this.#present.firstMissing(from, this.size);
  }

  nextPresent (pos: number): number {
    return this.#present.nextPresent(pos, this.size);
  }

  async write (chunks: Buffer[], pos: number, length: number): Promise<void> {
    if (this.#closing !== null) throw new FsError('ECANCELED', `${this.source.name} was closed`);
    this.#diskIo++;
    try {
      await writev(this.#fd, chunks, pos);
    } finally {
      this.#endDiskIo();
    }
    const written: Span = { start: pos, end: pos + length };
    const merged = this.#present.add(written.start, written.end);
    this.#lastProgressAt = performance.now();
    if (this.#state === 'stalled') this.#setState('downloading', null);
    this.#waiters.wake(written, merged);
  }

  #downloadEnded (download: Downloader, err: FsError | null): void {
    if (this.#download !== download) return; // stopped by cancel or close: they set the state
    this.#download = null;
    if (err !== null) this.#fail('error', err);
    else this.#setState(this.#present.bytes === this.size ? 'complete' : 'idle', null);
  }

  #fail (state: 'cancelled' | 'error', err: FsError): void {
    this.#setState(state, err);
    this.#waiters.rejectAll(err);
  }

  #setState (state: FileState, err: FsError | null): void {
    this.#error = err;
    if (this.#state === state) return;
    this.#state = state;
    this.#opts.observer?.onStateChange?.(this, state, err);
  }

  #endDiskIo (): void {
    if (--this.#diskIo === 0 && this.#onDiskIdle !== null) {
      this.#onDiskIdle();
      this.#onDiskIdle = null;
    }
  }

  #readDisk (buf: Buffer, pos: number, length: number, cb: ReadCallback): void {
    this.#diskIo++;
    const finish = (err: FsError | null, n: number): void => {
      this.#endDiskIo();
      cb(err, n);
    };
    const step = (done: number): void => {
      fs.read(this.#fd, buf, done, length - done, pos + done, (err, n) => {
        if (err !== null) return finish(new FsError('EIO', `reading the temp file of ${this.source.name}: ${err.message}`), 0);
        // The temp file always has the full size, so a short read means it was cut under us.
        if (n === 0) return finish(new FsError('EIO', `temp file of ${this.source.name} is shorter than expected`), 0);
        if (done + n < length) return step(done + n);
        finish(null, length);
      });
    };
    step(0);
  }
}
