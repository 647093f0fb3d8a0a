import { FsError } from '../errors';
import type { FileState } from '../file-state';
import type { FileSource } from '../origin/file-source';
import { FileVerifier, type VerifiedFile } from '../verify/file-verifier';
import type { CommitSource } from '../state/range-committer';
import type { DownloadKind } from './download-slots';
import { DownloadScheduler } from './download-scheduler';
import type { ScheduledDownload } from './scheduler-contract';
import { Downloader, type DownloadTarget } from './downloader';
import { FastReadGate } from './fast-read-gate';
import { FastReadWindow } from './fast-read-window';
import { RangeSet, type Span } from './range-set';
import { ProgressClock } from './progress-clock';
import { stoppedError, writeWithinQuota } from './quota-write';
import { RateMeter } from './rate-meter';
import type { ReadCallback, StoreOptions, StoreSource } from './store-contract';
import { TempFile } from './temp-file';
import { WaiterQueue, type WaiterInfo } from './waiter-queue';

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
  /** Whether it shows as stalled, when its waiting reads time out, and whether it gives its connections away. */
  readonly #progress: ProgressClock;
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
  /** How far the FUSE thread answers the file's reads itself (native/fast-reads.c), never while bytes are dropped or the file closes. */
  readonly #fastReadWindow: FastReadWindow;

  private constructor (source: StoreSource, file: TempFile, path: string, opts: StoreOptions, present: RangeSet, trimmed: boolean) {
    this.#present = present;
    this.trimmedAtCreate = trimmed;
    this.source = source;
    this.size = source.origin.size;
    this.#file = file;
    this.#path = path;
    this.#opts = opts;
    this.#progress = new ProgressClock(opts.readTimeoutMs);
    this.#fastReadWindow = new FastReadWindow(this.fastReads, this.size);
    this.#verifier = new FileVerifier(this.#verifiedFile(), opts.hasher, source.verified, opts.readTimeoutMs);
    const whole = present.bytes === this.size;
    if (whole) this.#state = this.#verifier.checked ? 'complete' : 'verifying';
    this.#updateFastReads();
    if (this.#state === 'verifying') queueMicrotask(() => { void this.#verifier.verify(); });
    this.#waiters = new WaiterQueue({
      stallMs: opts.readTimeoutMs,
      maxWaitMs: opts.readMaxWaitMs,
      lastProgressAt: (offset, end, since) => {
        const missing = this.#present.firstMissing(offset, end);
        return this.#progress.waitCountsFrom(missing >= 0 ? this.#scheduler.claimant(missing) : undefined, since);
      },
      onStalled: () => this.#progress.readsFailedForStall(),
      onSizeChange: () => opts.observer?.onWaitersChanged?.(this),
    });
    const rate = this.#rate;
    const progress = this.#progress;
    this.#scheduler = new DownloadScheduler({
      size: this.size,
      firstMissing: (from, to) => this.#present.firstMissing(from, to),
      waitingReads: () => this.#waiters.pending(),
      get bytesPerSecond () { return rate.bytesPerSecond; },
      get presentBytes () { return present.bytes; },
      get lastProgressAt () { return progress.lastProgressAt; },
      get readsStalled () { return progress.readsStalled; },
    }, {
      slots: opts.slots,
      maxPerFile: opts.maxDownloadsPerFile,
      fillMaxBytes: opts.fillMaxBytes,
      acceptRanges: source.origin.acceptRanges,
      createDownload: (kind, from, limit, allowedEnd) => this.#createDownload(kind, from, limit, allowedEnd),
      events: {
        started: first => {
          if (first) this.#progress.downloadStarted();
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

  /** Downloading, but nothing has arrived for a while (ProgressClock): shown as stalled. */
  get state (): FileState {
    return this.#state === 'downloading' && this.#progress.quiet ? 'stalled' : this.#state;
  }

  /** Since when (ms since the epoch) nothing has arrived, while the file shows as stalled; else null. */
  get stalledSince (): number | null {
    return this.state === 'stalled' ? this.#progress.quietSince : null;
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
    if (this.#fastReadWindow.sawRead(end, ahead)) this.#updateFastReads();
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

  /**
   * Paused (fsctl pause): nothing is downloaded that no program waits for; the downloads
   * running for nobody stop now, and a whole-file fill asked for waits for the pause to end.
   */
  setPaused (paused: boolean): void {
    if (paused) this.#scheduler.pause(); else this.#scheduler.unpause();
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
      this.#verifier.dropped();
      const gateShut = this.#fastReadWindow.shut();
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
    if (this.#discarding !== null) throw stoppedError(this.source.name);
    await writeWithinQuota({
      file: this.#file,
      quota: this.#opts.quota,
      id: this.id,
      name: this.source.name,
      signal,
      closing: () => this.#closing !== null,
      dropped: () => generation !== this.#generation,
    }, chunks, pos, length);
    const written: Span = { start: pos, end: pos + length };
    const merged = this.#present.add(written.start, written.end);
    if (merged.start === 0) {
      this.#verifier.prefixGrew(merged.end);
      this.#updateFastReads();
    }
    this.#opts.quota.setAllocated(this.id, this.#present.blockBytes);
    this.#rate.add(length);
    this.#progress.byteArrived();
    this.#retrying = null;
    if (this.#waiters.wake(written, merged) > 0) this.#scheduler.readsServed();
    this.#opts.observer?.onWrite?.(this, length);
  }

  #createDownload (kind: DownloadKind, from: number, limit: number, allowedEnd: number): ScheduledDownload {
    const { endpoints, origin } = this.source;
    return new Downloader(this, {
      source: endpoints,
      origin,
      dispatcher: this.#opts.dispatcher,
      stallTimeoutMs: this.#opts.downloadStallMs,
      limiter: this.#opts.limiter,
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
  recheck (): Promise<{ ok: boolean; actual: string }> {
    const failed = this.#state === 'error' ? this.#error : null;
    return this.#verifier.recheck(failed, this.#present.bytes === this.size && this.#state !== 'verifying');
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

  #updateFastReads (): void {
    if (this.#discarding === null && this.#closing === null) this.#fastReadWindow.update(this.#prefixEnd(), this.#verifier.checked);
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

  #closedError (): FsError {
    return new FsError('EIO', `${this.source.name} was closed`);
  }
}
