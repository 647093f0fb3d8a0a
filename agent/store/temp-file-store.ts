import type { Dispatcher } from 'undici';
import { FsError } from '../errors';
import type { FileState } from '../file-state';
import type { FileSource } from '../origin/file-source';
import type { ContentHasher } from '../verify/content-hasher';
import { FileVerifier, type VerifiedFile } from '../verify/file-verifier';
import type { OriginInfo } from '../origin/origin-info';
import type { CommitSource } from '../state/range-committer';
import type { DownloadKind, DownloadSlots } from './download-slots';
import { DownloadScheduler, type ScheduledDownload } from './download-scheduler';
import { Downloader, type DownloadTarget } from './downloader';
import { FastReadGate } from './fast-read-gate';
import type { FileIo } from './file-io';
import { BLOCK_BYTES, RangeSet, type Span } from './range-set';
import { RateMeter } from './rate-meter';
import { TempFile } from './temp-file';
import { WaiterQueue, type WaiterInfo } from './waiter-queue';

/**
 * A download that has received nothing this long shows as stalled (`fsctl ls`, events), with
 * no rate: longer than the pauses a healthy origin makes, short enough that a user is not
 * shown a rate for seconds after the bytes stopped.
 */
const STALL_SHOWN_MS = 3000;

/**
 * Fast reads of a downloading file stop past the furthest read JavaScript saw by half that
 * read's read-ahead window, and at most this: a sequential reader still shows itself every
 * few MiB, while its download has half a window left to go, so the download never stops at
 * its read-ahead bound for a reader it has not heard of.
 */
const FAST_READ_LEAD = 16 * 1024 * 1024;
/**
 * The kernel retries a read-ahead that failed as a synchronous read at once: a read that
 * comes this soon after the file's reads failed for a stall, with no byte since, fails at
 * once too, whatever download now claims its bytes (else a download restarted meanwhile
 * would give it a second timeout). A read that comes later gets its full timeout.
 */
const STALL_RETRY_WINDOW_MS = 1000;

/** A read's answer: bytes placed in the caller's buffer, or the error to surface. */
export type ReadCallback = (err: FsError | null, bytes: number) => void;

export interface StoreSource {
  /** Stable id of the file: names its temp file and its rows in the state database. */
  id: string;
  name: string;
  /** The URL and headers of each connection: fixed, or minted by a url-command. */
  endpoints: FileSource;
  origin: OriginInfo;
  /** The bytes on disk already hashed to `origin.digest` (a file checked in an earlier run). */
  verified: boolean;
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
  /** Hashes files with a digest, off the event loop. */
  hasher: ContentHasher;
  /** Told of state changes, writes, drops and retries: persistence, logs and status. */
  observer?: StoreObserver;
  /** The temp file's system calls; Node's unless a test injects faults. */
  fileIo?: FileIo;
  /** The store closed: the FUSE binding lets go of its descriptor of the temp file (FuseMount.retireFastReads). */
  retireFastReads?: (state: Buffer) => void;
}

/** What a store needs of the cache quota (agent/cache/cache-quota.ts). */
export interface StoreQuota {
  reserve (id: string, bytes: number, signal: AbortSignal): Promise<void>;
  unreserve (id: string): void;
  setAllocated (id: string, bytes: number): void;
  waitForDiskSpace (id: string, bytes: number, signal: AbortSignal): Promise<void>;
  noteWriteSucceeded (): void;
}

export interface StoreObserver {
  onStateChange? (store: TempFileStore, state: FileState, err: FsError | null): void;
  /** A download attempt failed and is retried: the file's `attempt`th such failure, `withoutProgress` of them in a row with no byte. */
  onRetry? (store: TempFileStore, err: FsError, delayMs: number, attempt: number, withoutProgress: number): void;
  /** Bytes reached the temp file (not yet synced). */
  onWrite? (store: TempFileStore, bytes: number): void;
  /** All bytes are being dropped; called in the turn the drop begins, before the file is cut, so the database stops claiming them first. */
  onDiscard? (store: TempFileStore): void;
  /** Last chance to commit ranges before the descriptor closes. */
  beforeClose? (store: TempFileStore): Promise<void>;
  /** Reads started or stopped waiting (see `waiterCount`). */
  onWaitersChanged? (store: TempFileStore): void;
  /** The whole file was hashed: it matched its digest, or not (`actual` is what it hashed to). */
  onVerified? (store: TempFileStore, ok: boolean, actual: string): void;
}

/**
 * One remote file: a sparse temp file, the ranges of it that are present, the reads waiting
 * for missing ranges, and the write path its downloads use. Which downloads run is the
 * scheduler's job (download-scheduler.ts). Every open handle of the file shares the store.
 *
 * Fields: `source` and the descriptor are set once; everything else is changed only from
 * the event loop, by reads, by the downloads' writes and by cancel/close.
 */
export class TempFileStore implements DownloadTarget, CommitSource {
  /** Set once, but for `endpoints` (fsctl set-url). */
  source: StoreSource;
  /** How far the FUSE thread answers the file's reads without JavaScript (#updateFastReads). */
  readonly fastReads = new FastReadGate();
  readonly size: number;
  readonly #file: TempFile;
  readonly #opts: StoreOptions;
  readonly #present: RangeSet;
  readonly #rate = new RateMeter();
  readonly #waiters: WaiterQueue;
  readonly #scheduler: DownloadScheduler;
  #state: FileState = 'idle';
  #error: FsError | null = null;
  /** Why the last attempt failed while a download retries; cleared by the next byte written. */
  #retrying: FsError | null = null;
  /** Download attempts of this file that failed and were retried, all connections counted. */
  #failedAttempts = 0;
  /** The file's last byte on disk (or the start of its first download): whether it shows as stalled, and gives its connections away. */
  #lastProgressAt = performance.now();
  /** The file's last byte on disk; -Infinity before the first of this store. */
  #lastByteAt = -Infinity;
  /** When reads last failed for a stall, while no byte has come since (STALL_RETRY_WINDOW_MS). */
  #readsStalledAt: number | null = null;
  #closing: Promise<void> | null = null;
  /**
   * The world a step that awaits acts on. Bumped in the very turn a drop of all bytes begins
   * (evict, a digest mismatch): a write, a sync or a hash that began before and resumes after
   * an await finds it changed and claims, commits or judges nothing. See `write`.
   */
  #generation = 0;
  #discarding: Promise<void> | null = null;
  /** Open FUSE handles; maintained by the pool. */
  openHandles = 0;
  /** Wall-clock time of the last open or read: eviction drops the least recent first. */
  lastAccessAt = Date.now();
  /** Set when the ranges claimed at creation were more than the temp file holds. */
  readonly trimmedAtCreate: boolean;
  readonly #path: string;
  /** The check of its bytes against the digest (agent/verify): reads of a whole file wait for it. */
  readonly #verifier: FileVerifier;
  /** How far fast reads of a downloading file may go: a little past the furthest read JavaScript saw. */
  #fastReadFrontier = 0;

  private constructor (source: StoreSource, file: TempFile, path: string, opts: StoreOptions, present: RangeSet, trimmed: boolean) {
    this.#present = present;
    this.trimmedAtCreate = trimmed;
    this.source = source;
    this.size = source.origin.size;
    this.#file = file;
    this.#path = path;
    this.#opts = opts;
    this.#verifier = new FileVerifier(this.#verifiedFile(), opts.hasher, source.verified, opts.readTimeoutMs);
    const whole = present.bytes === this.size;
    if (whole) this.#state = this.#verifier.checked ? 'complete' : 'verifying';
    this.#updateFastReads();
    if (this.#state === 'verifying') queueMicrotask(() => { void this.#verifier.verify(); });
    this.#waiters = new WaiterQueue({
      stallMs: opts.readTimeoutMs,
      maxWaitMs: opts.readMaxWaitMs,
      // The serving download's last byte, so a read joining a download that has stalled fails
      // at once. Its start (or its release from its read-ahead bound) counts too, but never
      // later than the read came: a read that waited for a connection gets no second timeout.
      // A read no download serves yet (none started, or waiting for a connection) counts from
      // its own arrival. The kernel's retry of a read that just failed for a stall fails at once.
      lastProgressAt: (offset, end, since) => {
        if (this.#readsStalledAt !== null && since - this.#readsStalledAt < STALL_RETRY_WINDOW_MS) return -Infinity;
        const missing = this.#present.firstMissing(offset, end);
        const d = missing >= 0 ? this.#scheduler.claimant(missing) : undefined;
        if (d !== undefined) return Math.max(d.lastByteAt, Math.min(d.lastProgressAt, since));
        return Math.max(this.#lastByteAt, since);
      },
      onStalled: () => { this.#readsStalledAt = performance.now(); },
      onSizeChange: () => opts.observer?.onWaitersChanged?.(this),
    });
    const rate = this.#rate;
    const lastProgressAt = (): number => this.#lastProgressAt;
    const readsStalled = (): boolean => this.#readsStalledAt !== null;
    this.#scheduler = new DownloadScheduler({
      size: this.size,
      firstMissing: (from, to) => this.#present.firstMissing(from, to),
      waitingReads: () => this.#waiters.pending(),
      get bytesPerSecond () { return rate.bytesPerSecond; },
      get presentBytes () { return present.bytes; },
      get lastProgressAt () { return lastProgressAt(); },
      get readsStalled () { return readsStalled(); },
    }, {
      slots: opts.slots,
      maxPerFile: opts.maxDownloadsPerFile,
      fillMaxBytes: opts.fillMaxBytes,
      acceptRanges: source.origin.acceptRanges,
      createDownload: (kind, from, limit, allowedEnd) => this.#createDownload(kind, from, limit, allowedEnd),
      events: {
        started: first => {
          if (first) this.#lastProgressAt = performance.now(); // the stall clock starts now
          this.#setState('downloading', null);
        },
        failed: err => this.#fail('error', err),
        complete: () => this.#completed(),
        idle: () => { if (this.#state !== 'complete' && this.#state !== 'verifying') this.#setState('idle', null); },
      },
    });
  }

  /**
   * Opens (or creates) the temp file at `path`. `claimed` are the ranges the database says
   * are on disk; those the file is too short to hold are dropped (see TempFile.open).
   */
  static async create (
    source: StoreSource, path: string, opts: StoreOptions, claimed: ReadonlyArray<readonly [number, number]> = []
  ): Promise<TempFileStore> {
    const present = new RangeSet();
    for (const [s, e] of claimed) present.add(s, e);
    const { file, trimmed } = await TempFile.open(path, source.name, source.origin.size, present, opts.fileIo);
    return new TempFileStore(source, file, path, opts, present, trimmed);
  }

  get id (): string { return this.source.id; }
  /** What an open hands the FUSE thread for its own reads; null once the store is closing. */
  fastReadHandle (): { fd: number; state: Buffer } | null {
    return this.#closing === null ? { fd: this.#file.fd, state: this.fastReads.state } : null;
  }

  /** Disk the present bytes take, in whole blocks. */
  get blockBytes (): number { return this.#present.blockBytes; }

  /** Downloading, but nothing has arrived for `STALL_SHOWN_MS` (or read-timeout, if shorter): shown as stalled. */
  get state (): FileState {
    const quiet = performance.now() - this.#lastProgressAt >= Math.min(STALL_SHOWN_MS, this.#opts.readTimeoutMs);
    return this.#state === 'downloading' && quiet ? 'stalled' : this.#state;
  }

  /** Since when (ms since the epoch) nothing has arrived, while the file shows as stalled; else null. */
  get stalledSince (): number | null {
    return this.state === 'stalled' ? Date.now() - (performance.now() - this.#lastProgressAt) : null;
  }

  get lastError (): FsError | null { return this.#error; }
  get retrying (): FsError | null { return this.#retrying; }
  get presentBytes (): number { return this.#present.bytes; }
  get waiterCount (): number { return this.#waiters.size; }
  get activeDownloads (): number { return this.#scheduler.active; }
  /** The most connections this file ever used at once (stopping ones included). */
  get peakDownloads (): number { return this.#scheduler.peak; }
  /** Where the download that will serve `offset` stands, or null when none will. */
  downloadPositionFor (offset: number): number | null {
    return this.#scheduler.claimant(offset)?.position ?? null;
  }

  /** Download rate over the last few seconds, bytes per second. */
  get bytesPerSecond (): number { return this.#rate.bytesPerSecond; }
  ranges (): Array<[number, number]> { return this.#present.toArray(); }
  waiters (): WaiterInfo[] { return this.#waiters.list(); }

  /**
   * The FUSE read path: answers from disk when [pos, pos+len) is present, otherwise waits for
   * it (bounded by the deadlines) and then reads straight into `buf`. `buf` is never touched
   * after `cb` has been called. `pid`: the process that reads, shown in the list of waiters
   * (null when unknown).
   */
  read (buf: Buffer, len: number, pos: number, cb: ReadCallback, readAheadEnd = 0, pid: number | null = null): void {
    if (this.#closing !== null) return cb(this.#closedError(), 0);
    if (pos >= this.size || len <= 0) return cb(null, 0);
    this.lastAccessAt = Date.now();
    const end = Math.min(this.size, pos + len);
    const ahead = Math.min(this.size, Math.max(end, readAheadEnd));
    const frontier = end + Math.min(FAST_READ_LEAD, Math.floor((ahead - end) / 2));
    if (frontier > this.#fastReadFrontier) {
      this.#fastReadFrontier = frontier;
      this.#updateFastReads();
    }
    if (this.#present.contains(pos, end)) {
      if (ahead > end) this.#scheduler.readAhead(end, ahead);
      if (this.#state === 'verifying') return this.#verifier.hold(buf, pos, end, cb);
      return this.#file.read(buf, pos, end - pos, cb);
    }
    if (this.#state === 'cancelled' || this.#state === 'error') {
      return cb(new FsError('EIO', `${this.source.name}: ${this.#error?.message ?? this.#state}`), 0);
    }
    this.#scheduler.demand(this.#present.firstMissing(pos, end), ahead);
    // Same synchronous turn as the check above: no write can slip in between.
    this.#waiters.add(pos, end, err => {
      if (err !== null) return cb(err, 0);
      if (this.#closing !== null) return cb(this.#closedError(), 0);
      this.#file.read(buf, pos, end - pos, cb);
    }, undefined, pid);
  }

  /**
   * What an open (or prefetch, or a resume at start) asks for: a file no larger than the
   * fill size, or any file when `all`, is downloaded whole in the background; a larger one
   * only as reads and their read-ahead ask. A failed (not cancelled) file is tried again.
   */
  startDownload (all = false): void {
    if (this.#closing !== null || this.#state === 'cancelled') return;
    // Two copies that failed their digest: only fsctl resume tries a third.
    if (this.#state === 'error' && this.#verifier.gaveUp) return;
    if (this.#state === 'error') this.#clearFailure();
    this.#scheduler.start(all);
  }

  /** Stops every download and fails every waiting read at once; later reads of missing bytes fail at once. */
  cancel (reason = 'download cancelled'): void {
    if (this.#state === 'complete' || this.#state === 'verifying') return;
    this.#scheduler.halt();
    this.#fail('cancelled', new FsError('ECANCELED', reason));
  }

  /** Clears a cancel or an error and downloads again now, cutting any back-off pause short. */
  resume (): void {
    this.#verifier.forgetBadCopies();
    if (this.#state === 'cancelled' || this.#state === 'error') this.#clearFailure();
    else this.source.endpoints.retryNow();
    this.#scheduler.resume();
    this.startDownload();
  }

  /**
   * The file has a new source (URL, headers or url-command) for the same content: new
   * connections use it; those running with the old one stop and start again, and a file that
   * failed (an expired URL, say) is tried again.
   */
  setEndpoints (endpoints: FileSource): void {
    this.source = { ...this.source, endpoints };
    if (this.#state === 'error') this.resume(); else this.#scheduler.restart();
  }

  /** Fails all waiters, stops the downloads, and closes the file once no disk I/O is in flight. */
  close (reason = 'file store closed'): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close (reason: string): Promise<void> {
    this.#scheduler.close();
    this.#waiters.rejectAll(new FsError('EIO', reason));
    this.#verifier.close();
    await this.fastReads.close();
    this.#opts.retireFastReads?.(this.fastReads.state);
    await this.#file.idle();
    await this.#discarding;
    await this.#opts.observer?.beforeClose?.(this);
    await this.#file.close();
  }

  /**
   * Drops every byte (eviction, a digest mismatch). In the turn it is called, the store stops
   * claiming them: a new generation (so a write in flight claims nothing when it lands), no
   * present range, the fast-read gate shut, the database told (it un-claims the ranges),
   * waiting reads failed, downloads stopped and new writes refused. Only once the reads
   * that got past the gate and the disk I/O in flight have ended is the file cut.
   */
  discard (reason = 'cached bytes dropped'): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    if (this.#discarding === null) {
      this.#generation++;
      this.#present.clear();
      this.#fastReadFrontier = 0;
      this.#verifier.dropped();
      const gateShut = this.fastReads.close();
      this.#opts.observer?.onDiscard?.(this);
      this.#waiters.rejectAll(new FsError('EIO', reason));
      this.#discarding = this.#discard(gateShut).finally(() => { this.#discarding = null; });
      this.#scheduler.reset(this.#discarding);
    }
    return this.#discarding;
  }

  async #discard (gateShut: Promise<void>): Promise<void> {
    await gateShut; // no read past JavaScript may see a byte go
    await this.#file.idle();
    await this.#file.cut(this.size);
    this.#opts.quota.setAllocated(this.id, 0); // only now are the blocks free for others' writes
    this.#verifier.refilling();
    // A cancel or a failure outlives its bytes: only resume clears it.
    if (this.#state !== 'cancelled' && this.#state !== 'error') this.#setState(this.size === 0 ? 'complete' : 'idle', null);
  }

  /** The present ranges, for a commit without a sync; null once the file is closed. */
  snapshot (): Array<[number, number]> | null {
    return this.#file.closed ? null : this.#present.toArray();
  }

  /**
   * Snapshots the present ranges, syncs the file, then saves the snapshot in the same turn:
   * the database learns of bytes only once they are durable, and never of dropped ones.
   */
  async syncAndSave (save: (ranges: Array<[number, number]>) => void): Promise<void> {
    if (this.#file.closed) return;
    const generation = this.#generation;
    const snapshot = this.#present.toArray();
    await this.#file.sync();
    if (generation === this.#generation) save(snapshot);
  }

  // DownloadTarget: what a downloader may ask of the store.

  firstMissing (from: number): number {
    return this.#present.firstMissing(from, this.size);
  }

  nextPresent (pos: number): number {
    return this.#present.nextPresent(pos, this.size);
  }

  /**
   * Writes a download's bytes and only then claims them. The claim is made only if the world
   * the write began in still holds after its awaits: the same generation (no drop began) and
   * the whole length landed (TempFile.write). Otherwise the download is told to stop.
   */
  async write (chunks: Buffer[], pos: number, length: number, signal: AbortSignal): Promise<void> {
    const generation = this.#generation;
    if (this.#discarding !== null) throw this.#stoppedError();
    await this.#writeWithinQuota(chunks, pos, length, signal, generation);
    const written: Span = { start: pos, end: pos + length };
    const merged = this.#present.add(written.start, written.end);
    if (merged.start === 0) {
      this.#verifier.prefixGrew(merged.end);
      this.#updateFastReads();
    }
    this.#opts.quota.setAllocated(this.id, this.#present.blockBytes);
    this.#rate.add(length);
    this.#lastProgressAt = this.#lastByteAt = performance.now();
    this.#readsStalledAt = null;
    this.#retrying = null;
    if (this.#waiters.wake(written, merged) > 0) this.#scheduler.readsServed();
    this.#opts.observer?.onWrite?.(this, length);
  }

  /**
   * Reserves quota, then writes; a full disk waits for space like a full quota does. Resolves
   * only when every byte landed in `generation`'s file; throws ECANCELED once it is not
   * the world the write began in.
   */
  async #writeWithinQuota (chunks: Buffer[], pos: number, length: number, signal: AbortSignal, generation: number): Promise<void> {
    const quota = this.#opts.quota;
    // A write may begin and end inside partly filled blocks: reserve for both.
    const reserve = length + 2 * BLOCK_BYTES;
    for (;;) {
      await quota.reserve(this.id, reserve, signal);
      if (this.#closing !== null || signal.aborted || generation !== this.#generation) {
        quota.unreserve(this.id);
        throw this.#stoppedError();
      }
      try {
        await this.#file.write(chunks, pos);
        if (generation !== this.#generation) { // bytes dropped while it was in flight: they are being cut
          quota.unreserve(this.id);
          throw this.#stoppedError();
        }
        quota.noteWriteSucceeded();
        return;
      } catch (err) {
        if (err instanceof FsError) throw err;
        quota.unreserve(this.id);
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') {
          throw new FsError('EIO', `writing the temp file of ${this.source.name}: ${(err as Error).message}`);
        }
      }
      await quota.waitForDiskSpace(this.id, reserve, signal);
    }
  }

  #createDownload (kind: DownloadKind, from: number, limit: number, allowedEnd: number): ScheduledDownload {
    const { endpoints, origin } = this.source;
    return new Downloader(this, {
      source: endpoints,
      origin,
      dispatcher: this.#opts.dispatcher,
      stallTimeoutMs: this.#opts.downloadStallMs,
      onRetry: (err, delayMs, withoutProgress) => {
        this.#retrying = err;
        this.#failedAttempts += 1;
        this.#opts.observer?.onRetry?.(this, err, delayMs, this.#failedAttempts, withoutProgress);
      },
    }, kind, from, limit, allowedEnd);
  }

  // Content verification (agent/verify/file-verifier.ts): a file with a digest is hashed as its
  // prefix grows, and checked when its last byte lands; until then, a whole file's reads wait.

  /** The file has every byte: complete, or first hashed when it has a digest not yet matched. */
  #completed (): void {
    if (this.#verifier.checked) return this.#setState('complete', null);
    if (this.#state === 'verifying') return;
    this.#setState('verifying', null);
    void this.#verifier.verify();
  }

  /**
   * fsctl verify: hashes the whole file on disk again (a cache damaged after the fact) and
   * deals with the outcome as with a download's. Resolves with what it hashed to.
   */
  async recheck (): Promise<{ ok: boolean; actual: string }> {
    const digest = this.source.origin.digest;
    if (digest === null) throw new FsError('EINVAL', `no digest is known for ${this.source.name}; give one at add time with --sha256`);
    if (this.#state === 'error' && this.#error !== null) {
      const why = `${this.source.name} failed (${this.#error.message})`;
      throw new FsError('EIO', `${why}: there is no whole copy to check; fsctl resume tries again`);
    }
    if (this.#present.bytes !== this.size || this.#state === 'verifying') {
      throw new FsError('EBUSY', `${this.source.name} is not complete yet; it is verified when its last byte arrives`);
    }
    return await this.#verifier.recheck(digest);
  }

  /** What the verifier sees of this store. */
  #verifiedFile (): VerifiedFile {
    const store = this;
    return {
      get name () { return store.source.name; },
      get size () { return store.size; },
      get path () { return store.#path; },
      get digest () { return store.source.origin.digest; },
      get generation () { return store.#generation; },
      get closing () { return store.#closing !== null; },
      prefixEnd: () => this.#prefixEnd(),
      read: (buf, pos, length, cb) => this.#file.read(buf, pos, length, cb),
      matched: actual => {
        this.#updateFastReads();
        this.#setState('complete', null);
        this.#opts.observer?.onVerified?.(this, true, actual);
      },
      mismatched: async (actual, reason, final) => {
        this.#opts.observer?.onVerified?.(this, false, actual);
        await this.discard(reason);
        if (final !== null) {
          this.#scheduler.halt(); // reads that came meanwhile must not fetch a third copy; fsctl resume does
          this.#fail('error', final);
        } else {
          this.startDownload(true);
        }
      },
      failed: err => this.#fail('error', err),
    };
  }

  /**
   * How far the FUSE thread may answer the file's reads itself (native/fast-reads.c), never while bytes
   * are being dropped or the file closes:
   *  - a whole file: all of it, once checked against its digest (until then, reads wait for
   *    the verdict in JavaScript);
   *  - a file still downloading: its present prefix, but only up to #fastReadFrontier (half
   *    a read-ahead window, at most FAST_READ_LEAD, past the furthest read JavaScript saw),
   *    so a sequential reader still shows itself and its read-ahead keeps the download ahead.
   */
  #updateFastReads (): void {
    if (this.#discarding !== null || this.#closing !== null) return;
    const prefixEnd = this.#prefixEnd();
    let end: number;
    if (prefixEnd === this.size) end = this.#verifier.checked && this.size > 0 ? FastReadGate.WHOLE : 0;
    else end = Math.min(prefixEnd, this.#fastReadFrontier);
    if (end !== this.fastReads.end) this.fastReads.open(end);
  }

  /** Where the bytes present from byte 0 on end (the size, for a whole file). */
  #prefixEnd (): number {
    const missing = this.#present.firstMissing(0, this.size);
    return missing < 0 ? this.size : missing;
  }

  #clearFailure (): void {
    this.source.endpoints.retryNow();
    this.#setState(this.#scheduler.active > 0 ? 'downloading' : 'idle', null);
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

  #stoppedError (): FsError {
    return new FsError('ECANCELED', `download of ${this.source.name} was stopped`);
  }

  #closedError (): FsError {
    return new FsError('EIO', `${this.source.name} was closed`);
  }
}
