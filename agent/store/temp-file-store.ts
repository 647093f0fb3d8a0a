import fs from 'node:fs';
import { promisify } from 'node:util';
import type { Dispatcher } from 'undici';
import { FsError } from '../errors';
import type { OriginInfo, RequestHeaders } from '../origin/origin-info';
import type { DownloadSlots, SlotHolder } from './download-slots';
import { Downloader, type DownloadKind } from './downloader';
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

/** A read this close ahead of a download's position waits for it rather than opening another connection... */
const REACH_MIN_BYTES = 4 * 1024 * 1024;
/** ...or as far as that download gets in this long at the file's current rate, if that is further. */
const REACH_SECONDS = 1;

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
  /** Origin connections across all files: demand downloads before read-ahead and fill. */
  slots: DownloadSlots;
  /** Origin connections one file may use at once. */
  maxDownloadsPerFile: number;
  /** Files up to this size are downloaded whole in the background once opened. */
  fillMaxBytes: number;
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
  readonly #present: RangeSet;
  readonly #rate = new RateMeter();
  readonly #waiters: WaiterQueue;
  /** Running downloads; their claims [position, limit) never overlap. */
  readonly #downloads = new Set<Downloader>();
  /** Download the whole file, not only what reads ask for: small files, prefetch, resumed downloads. */
  #fillAll = false;
  /** A waiting read found every connection of this file busy with other waiting reads. */
  #starved = false;
  /** Downloads stopped but not yet ended: they still count against the per-file limit. */
  #ending = 0;
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

  private constructor (source: StoreSource, path: string, fd: number, opts: StoreOptions, present: RangeSet, trimmed: boolean) {
    this.#present = present;
    this.trimmedAtCreate = trimmed;
    this.source = source;
    this.path = path;
    this.size = source.origin.size;
    this.#fd = fd;
    this.#opts = opts;
    this.#waiters = new WaiterQueue({
      stallMs: opts.readTimeoutMs,
      maxWaitMs: opts.readMaxWaitMs,
      // The serving download's last byte; a read no download serves (yet) goes by the file's
      // last byte, not its own arrival, so the kernel's retry of a failed read fails at once.
      lastProgressAt: (offset, end) => {
        const missing = this.#present.firstMissing(offset, end);
        return (missing >= 0 ? this.#claimant(missing)?.lastProgressAt : undefined) ?? this.#lastProgressAt;
      },
    });
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
      if (present.bytes === 0 && onDisk > 0) await ftruncate(fd, 0); // nothing claimed: no stale bytes survive
      await ftruncate(fd, source.origin.size);
    } catch (err) {
      await closeFile(fd).catch(() => {});
      throw err;
    }
    const store = new TempFileStore(source, path, fd, opts, present, trimmed);
    if (present.bytes === store.size) store.#state = 'complete';
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
  get activeDownloads (): number { return this.#downloads.size; }
  /** The most connections this file ever used at once (stopping ones included). */
  peakDownloads = 0;
  /** Where the download that will serve `offset` stands, or null when none will. */
  downloadPositionFor (offset: number): number | null {
    return this.#claimant(offset)?.position ?? null;
  }
  /** Download rate over the last few seconds, bytes per second. */
  get bytesPerSecond (): number { return this.#rate.bytesPerSecond; }
  ranges (): Array<[number, number]> { return this.#present.toArray(); }
  waiters (): WaiterInfo[] { return this.#waiters.list(); }

  /**
   * The FUSE read path: answers from disk when [pos, pos+len) is present, otherwise waits for
   * it (bounded by the deadlines) and then reads straight into `buf`. `buf` is never touched
   * after `cb` has been called.
   */
  read (buf: Buffer, len: number, pos: number, cb: ReadCallback, readAheadEnd = 0, signal?: AbortSignal, pid?: number): void {
    if (this.#closing !== null) return cb(new FsError('EIO', `${this.source.name} was closed`), 0);
    if (pos >= this.size || len <= 0) return cb(null, 0);
    this.lastAccessAt = Date.now();
    const end = Math.min(this.size, pos + len);
    const ahead = Math.min(this.size, Math.max(end, readAheadEnd));
    if (this.#present.contains(pos, end)) {
      if (ahead > end) this.#readAhead(end, ahead);
      return this.#readDisk(buf, pos, end - pos, cb);
    }
    if (this.#state === 'cancelled' || this.#state === 'error') {
      return cb(new FsError('EIO', `${this.source.name}: ${this.#error?.message ?? this.#state}`), 0);
    }
    this.#cover(this.#present.firstMissing(pos, end), ahead, 'demand');
    // Same synchronous turn as the check above: no write can slip in between.
    this.#waiters.add(pos, end, err => {
      if (err !== null) return cb(err, 0);
      if (this.#closing !== null) return cb(new FsError('EIO', `${this.source.name} was closed`), 0);
      this.#readDisk(buf, pos, end - pos, cb);
    }, signal, pid);
  }

  /**
   * What an open (or prefetch, or a resume at start) asks for: a file no larger than the
   * fill size, or any file when `all`, is downloaded whole in the background; a larger one
   * only as reads and their read-ahead ask. A failed (not cancelled) file is tried again.
   */
  startDownload (all = false): void {
    if (this.#closing !== null || this.#state === 'cancelled') return;
    if (this.#state === 'error') this.#setState(this.#downloads.size > 0 ? 'downloading' : 'idle', null);
    if (all || this.size <= this.#opts.fillMaxBytes) this.#fillAll = true;
    if (this.#fillAll) this.#fillNextHole();
  }

  /** Stops every download and fails every waiting read at once; later reads of missing bytes fail at once. */
  cancel (reason = 'download cancelled'): void {
    if (this.#state === 'complete') return;
    this.#stopDownloads();
    this.#fail('cancelled', new FsError('ECANCELED', reason));
  }

  /** Clears a cancel or an error and downloads again now, cutting any back-off pause short. */
  resume (): void {
    if (this.#state === 'cancelled' || this.#state === 'error') this.#setState(this.#downloads.size > 0 ? 'downloading' : 'idle', null);
    for (const d of this.#downloads) d.retryNow();
    this.startDownload();
  }

  /** Read-ahead: starts or extends a fill download for the bytes a sequential reader will want next. */
  #readAhead (from: number, to: number): void {
    if (this.#state === 'cancelled' || this.#state === 'error' || this.#closing !== null) return;
    const missing = this.#present.firstMissing(from, to);
    if (missing >= 0) this.#cover(missing, to, 'fill');
  }

  /**
   * Makes sure a download will bring byte `missing` and run on to `wantEnd`: the download
   * whose claim holds it, if it will get there soon (within its reach); otherwise a new one
   * from `missing`, which takes the rest of any claim it lands in. Never two downloads for
   * one byte.
   */
  #cover (missing: number, wantEnd: number, kind: DownloadKind): void {
    if (this.#closing !== null) return;
    if (this.#discarding !== null) {
      void this.#discarding.then(() => this.#cover(missing, wantEnd, kind));
      return;
    }
    const bound = this.#fillAll ? this.size : wantEnd;
    const holder = this.#claimant(missing);
    if (holder !== undefined) {
      if (kind === 'demand') holder.kind = 'demand';
      const reach = Math.max(REACH_MIN_BYTES, this.#rate.bytesPerSecond * REACH_SECONDS);
      // Only a read a program waits on splits a claim; read-ahead rides on the download there.
      if (kind === 'fill' || missing - holder.position <= reach || !this.source.origin.acceptRanges || this.#spawn(kind, missing, holder.limit, bound) === null) {
        holder.allowUpTo(bound);
      } else {
        holder.setLimit(missing); // a far seek: the new download took the rest of the claim
      }
      return;
    }
    let limit = this.size;
    for (const d of this.#downloads) if (d.position > missing && d.position < limit) limit = d.position;
    this.#spawn(kind, missing, limit, bound);
  }

  /** The download whose claim holds `offset`. */
  #claimant (offset: number): Downloader | undefined {
    for (const d of this.#downloads) if (d.position <= offset && offset < d.limit) return d;
    return undefined;
  }

  /** Starts a fill download at the first missing byte no download claims. */
  #fillNextHole (): void {
    let pos = this.#present.firstMissing(0, this.size);
    while (pos >= 0) {
      const holder = this.#claimant(pos);
      if (holder === undefined) return this.#cover(pos, this.size, 'fill');
      pos = this.#present.firstMissing(holder.limit, this.size);
    }
  }

  /**
   * Starts a download over [from, limit), within the per-file and overall connection limits:
   * a demand download may stop a fill download to get a connection. Null when none can start.
   */
  #spawn (kind: DownloadKind, from: number, limit: number, allowedEnd: number): Downloader | null {
    if (this.#downloads.size + this.#ending >= this.#opts.maxDownloadsPerFile) {
      // At the limit, a waiting read stops a download no other waiting read needs, and
      // starts when that one has ended (#downloadEnded runs #continueWork).
      const victim = kind === 'demand' ? this.#leastNeeded() : undefined;
      if (victim !== undefined) this.#retire(victim);
      else this.#starved ||= kind === 'demand'; // or once some waiting read is served
      return null;
    }
    const download = new Downloader(this, {
      url: this.source.url,
      headers: this.source.headers,
      origin: this.source.origin,
      dispatcher: this.#opts.dispatcher,
      stallTimeoutMs: this.#opts.downloadStallMs,
      onRetry: (err, delayMs, attempt) => this.#opts.observer?.onRetry?.(this, err, delayMs, attempt),
    }, kind, from, limit, allowedEnd);
    const slot: SlotHolder = { get kind () { return download.kind; }, needed: () => this.#needed().has(download), preempt: () => this.#retire(download) };
    if (!this.#opts.slots.acquire(slot)) {
      this.#opts.slots.whenFree(kind, this.#continueWork);
      return null;
    }
    if (this.#downloads.size === 0) this.#lastProgressAt = performance.now(); // the stall clock starts now
    this.#downloads.add(download);
    this.peakDownloads = Math.max(this.peakDownloads, this.#downloads.size + this.#ending);
    this.#error = null;
    this.#setState('downloading', null);
    download.run().then(
      () => this.#downloadEnded(download, slot, null),
      (err: FsError) => this.#downloadEnded(download, slot, err),
    );
    return download;
  }

  /** A download that may give way to a read a program waits on: a fill one, else one no waiting read needs. */
  #leastNeeded (): Downloader | undefined {
    const fill = [...this.#downloads].find(d => d.kind === 'fill');
    if (fill !== undefined) return fill;
    const needed = this.#needed();
    return [...this.#downloads].find(d => !needed.has(d));
  }

  /** The downloads some waiting read depends on. Only asked when connections run short. */
  #needed (): Set<Downloader> {
    const needed = new Set<Downloader>();
    for (const w of this.#waiters.pending()) {
      const missing = this.#present.firstMissing(w.offset, w.end);
      const d = missing >= 0 ? this.#claimant(missing) : undefined;
      if (d !== undefined) needed.add(d);
    }
    return needed;
  }

  /** Stops one download and frees its claim at once; it counts against the limit until it has ended. */
  #retire (download: Downloader): void {
    if (!this.#downloads.delete(download)) return;
    this.#ending++;
    download.abort();
  }

  /** Fails all waiters, stops the download, and closes the file once no disk I/O is in flight. */
  close (reason = 'file store closed'): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close (reason: string): Promise<void> {
    this.#opts.slots.forget(this.#continueWork);
    this.#stopDownloads();
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
    this.#fillAll = false; // dropped bytes are not fetched again until something reads them
    this.#stopDownloads();
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

  /** Stops every download; their ends are then ignored and their late writes refused. */
  #stopDownloads (): void {
    for (const d of [...this.#downloads]) this.#retire(d);
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
    if (this.#waiters.wake(written, merged) > 0) {
      // Served reads may free a download for reads still waiting, here or in another file.
      if (this.#starved) {
        this.#starved = false;
        this.#continueWork();
      }
      this.#opts.slots.poke();
    }
    this.#opts.observer?.onWrite?.(this, length);
  }

  #downloadEnded (download: Downloader, slot: SlotHolder, err: FsError | null): void {
    this.#opts.slots.release(slot);
    const current = this.#downloads.delete(download);
    if (!current) this.#ending--;
    if (this.#closing !== null || this.#state === 'cancelled') return;
    if (current && err !== null) {
      // The origin failed for good (a 404, a changed file): every download of it would too.
      this.#stopDownloads();
      this.#fail('error', err);
      return;
    }
    if (this.#present.bytes === this.size) return this.#setState('complete', null);
    this.#continueWork();
  }

  /**
   * Starts what still needs a download: first every waiting read (a new download, or the one
   * whose claim holds it told to run that far), then the rest of the file if it is being
   * filled. Runs when a download ends, and when a connection may be had after this file was
   * refused one.
   */
  readonly #continueWork = (): void => {
    if (this.#closing !== null || this.#state === 'cancelled' || this.#state === 'error' || this.#state === 'complete') return;
    for (const w of this.#waiters.pending()) {
      const missing = this.#present.firstMissing(w.offset, w.end);
      if (missing >= 0) this.#cover(missing, w.end, 'demand');
    }
    if (this.#fillAll) this.#fillNextHole();
    if (this.#downloads.size === 0) this.#setState('idle', null);
  };

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
