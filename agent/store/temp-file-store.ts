import fs from 'node:fs';
import { promisify } from 'node:util';
import type { Dispatcher } from 'undici';
import { FsError } from '../errors';
import type { OriginInfo, RequestHeaders } from '../origin/origin-info';
import { Downloader } from './downloader';
import { BLOCK_BYTES, RangeSet, type Span } from './range-set';
import { RateMeter } from './rate-meter';
import { WaiterQueue, type WaiterInfo } from './waiter-queue';

const openFile = promisify(fs.open);
const fstat = promisify(fs.fstat);
const ftruncate = promisify(fs.ftruncate);
const fdatasync = promisify(fs.fdatasync);
const closeFile = promisify(fs.close);
const writev = promisify(fs.writev);

export type FileState = 'idle' | 'downloading' | 'stalled' | 'complete' | 'cancelled' | 'error';

/** A read's answer: bytes placed in the caller's buffer, or the error to surface. */
export type ReadCallback = (err: FsError | null, bytes: number) => void;

export interface StoreSource {
  /** Stable id of the file: names its temp file and its rows in the state database. */
  id: string;
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
  /** The cache's space limit: every write reserves its bytes first. */
  quota: StoreQuota;
  /** Told of state changes, writes, drops and retries: persistence, logs and status. */
  observer?: StoreObserver;
}

/** What a store needs of the cache quota (agent/cache/cache-quota.ts). */
export interface StoreQuota {
  reserve (id: string, bytes: number, signal: AbortSignal): Promise<void>;
  unreserve (id: string): void;
  setAllocated (id: string, bytes: number): void;
  waitForDiskSpace (id: string, bytes: number, signal: AbortSignal): Promise<void>;
  diskWritable (): void;
}

export interface StoreObserver {
  onStateChange? (store: TempFileStore, state: FileState, err: FsError | null): void;
  onRetry? (store: TempFileStore, err: FsError, delayMs: number, attempt: number): void;
  /** Bytes reached the temp file (not yet synced). */
  onWrite? (store: TempFileStore, bytes: number): void;
  /** All bytes were dropped; called before the file is cut, so the database stops claiming them first. */
  onDiscard? (store: TempFileStore): void;
  /** Last chance to commit ranges before the descriptor closes. */
  beforeClose? (store: TempFileStore): Promise<void>;
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
  readonly #rate = new RateMeter();
  readonly #waiters: WaiterQueue;
  #download: Downloader | null = null;
  #state: FileState = 'idle';
  #error: FsError | null = null;
  #lastProgressAt = performance.now();
  /** Reads and writes of the temp file in flight: the descriptor is closed only at zero. */
  #diskIo = 0;
  #onDiskIdle: (() => void) | null = null;
  #closing: Promise<void> | null = null;
  #fdClosed = false;
  /** Bumped when all bytes are dropped, so a sync that began before cannot commit them. */
  #generation = 0;
  #discarding: Promise<void> | null = null;
  /** Open FUSE handles; maintained by the pool. */
  openHandles = 0;
  /** Wall-clock time of the last open or read: eviction drops the least recent first. */
  lastAccessAt = Date.now();
  /** Set when the ranges claimed at creation were more than the temp file holds. */
  readonly trimmedAtCreate: boolean;

  private constructor (source: StoreSource, path: string, fd: number, opts: StoreOptions, trimmed: boolean) {
    this.trimmedAtCreate = trimmed;
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

  /**
   * Opens (or creates, owner-only) the sparse temp file at `path` at the file's full size.
   * `claimed` are the ranges the database says are on disk; any the file is too short to
   * hold (it was cut or is gone) are dropped, so no byte is served that is not there.
   */
  static async create (source: StoreSource, path: string, opts: StoreOptions, claimed: ReadonlyArray<readonly [number, number]> = []): Promise<TempFileStore> {
    const fd = await openFile(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    const present = new RangeSet();
    let trimmed = false;
    try {
      const onDisk = (await fstat(fd)).size;
      for (const [s, e] of claimed) present.add(s, e);
      if (present.bytes > 0 && onDisk < source.origin.size) {
        present.truncate(onDisk);
        trimmed = true;
      }
      if (present.bytes === 0) await ftruncate(fd, 0); // nothing claimed: no stale bytes survive
      await ftruncate(fd, source.origin.size);
    } catch (err) {
      await closeFile(fd).catch(() => {});
      throw err;
    }
    const store = new TempFileStore(source, path, fd, opts, trimmed);
    for (const [s, e] of present.toArray()) store.#present.add(s, e);
    if (store.#present.bytes === store.size) store.#state = 'complete';
    return store;
  }

  get id (): string { return this.source.id; }
  /** Disk the present bytes take, in whole blocks. */
  get blockBytes (): number { return this.#present.blockBytes; }

  get state (): FileState {
    if (this.#state === 'downloading' && performance.now() - this.#lastProgressAt >= this.#opts.readTimeoutMs) return 'stalled';
    return this.#state;
  }

  get lastError (): FsError | null { return this.#error; }
  get presentBytes (): number { return this.#present.bytes; }
  get waiterCount (): number { return this.#waiters.size; }
  get downloadPosition (): number | null { return this.#download?.position ?? null; }
  /** Download rate over the last few seconds, bytes per second. */
  get bytesPerSecond (): number { return this.#rate.bytesPerSecond; }
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
    this.lastAccessAt = Date.now();
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
    if (this.#discarding !== null) {
      void this.#discarding.then(() => this.startDownload());
      return;
    }
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

  /** Clears a cancel or an error and downloads again now, cutting any back-off pause short. */
  resume (): void {
    if (this.#state === 'cancelled' || this.#state === 'error') this.#setState('idle', null);
    this.#download?.retryNow();
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
    await this.#diskIdle();
    await this.#discarding;
    await this.#opts.observer?.beforeClose?.(this);
    await this.#diskIdle();
    this.#fdClosed = true;
    await closeFile(this.#fd);
  }

  /**
   * Drops every byte (eviction, or a new version at the origin): stops the download, lets
   * disk I/O in flight finish, tells the observer (which un-claims the ranges in the
   * database) and only then cuts the file.
   */
  discard (reason = 'cached bytes dropped'): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#discarding ??= this.#discard(reason).finally(() => { this.#discarding = null; });
    return this.#discarding;
  }

  async #discard (reason: string): Promise<void> {
    this.#stopDownload();
    this.#waiters.rejectAll(new FsError('EIO', reason));
    await this.#diskIdle();
    this.#generation++;
    this.#present.clear();
    this.#opts.observer?.onDiscard?.(this);
    this.#opts.quota.setAllocated(this.id, 0);
    this.#diskIo++;
    try {
      await ftruncate(this.#fd, 0);
      await ftruncate(this.#fd, this.size);
    } finally {
      this.#endDiskIo();
    }
    this.#setState(this.size === 0 ? 'complete' : 'idle', null);
  }

  /**
   * Snapshots the present ranges, syncs the file, then saves the snapshot in the same turn:
   * the database learns of bytes only once they are durable, and never of dropped ones.
   */
  async syncAndSave (save: (ranges: Array<[number, number]>) => void): Promise<void> {
    if (this.#fdClosed) return;
    const generation = this.#generation;
    const snapshot = this.#present.toArray();
    this.#diskIo++;
    try {
      await fdatasync(this.#fd);
    } finally {
      this.#endDiskIo();
    }
    if (generation === this.#generation) save(snapshot);
  }

  #diskIdle (): Promise<void> {
    if (this.#diskIo === 0) return Promise.resolve();
    return new Promise<void>(resolve => {
      const previous = this.#onDiskIdle;
      this.#onDiskIdle = () => { previous?.(); resolve(); };
    });
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

  async write (chunks: Buffer[], pos: number, length: number, signal: AbortSignal): Promise<void> {
    const quota = this.#opts.quota;
    // A write may begin and end inside partly filled blocks: reserve for both.
    const reserve = length + 2 * BLOCK_BYTES;
    for (;;) {
      await quota.reserve(this.id, reserve, signal);
      if (this.#closing !== null || signal.aborted) {
        quota.unreserve(this.id);
        throw new FsError('ECANCELED', `download of ${this.source.name} was stopped`);
      }
      this.#diskIo++;
      try {
        await writev(this.#fd, chunks, pos);
        break;
      } catch (err) {
        quota.unreserve(this.id);
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw new FsError('EIO', `writing the temp file of ${this.source.name}: ${(err as Error).message}`);
      } finally {
        this.#endDiskIo();
      }
      await quota.waitForDiskSpace(this.id, reserve, signal);
    }
    quota.diskWritable();
    const written: Span = { start: pos, end: pos + length };
    const merged = this.#present.add(written.start, written.end);
    quota.setAllocated(this.id, this.#present.blockBytes);
    this.#rate.add(length);
    this.#lastProgressAt = performance.now();
    this.#waiters.wake(written, merged);
    this.#opts.observer?.onWrite?.(this, length);
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
