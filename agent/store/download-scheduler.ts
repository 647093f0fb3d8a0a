import type { FsError } from '../errors';
import { ConnectionRamp } from './connection-ramp';
import type { DownloadKind, SlotHolder } from './download-slots';
import type { ScheduledDownload, ScheduledFile, SchedulerOptions } from './scheduler-contract';

/** Paused, a read is fetched this far past its first missing byte and no further: its own bytes and a little read-ahead. */
const PAUSED_WINDOW_BYTES = 1024 * 1024;

/**
 * Which downloads one file runs, over which bytes.
 *
 * Claims:
 *  - A file may have several downloads (at most `maxPerFile`), each over a claim
 *    [position, limit). Claims never overlap, so no byte is fetched twice.
 *  - When a read needs a missing byte m:
 *      - a download whose claim holds m and that will get there soon (within its reach:
 *        REACH_MIN_BYTES, or REACH_SECONDS at the file's current rate) serves it; its
 *        read-ahead bound moves out to the read's window;
 *      - if m is further (a seek), a new download starts at m and takes the rest of that
 *        claim; the old one stops when it reaches m (setLimit);
 *      - if no claim holds m (a seek backwards, a hole), a new download covers m up to the
 *        next claim or the next present byte (the download stops there by itself).
 *  - Only a read a program waits on ('demand') splits a claim; read-ahead ('fill') only
 *    extends a download or starts one in unclaimed space.
 *  - Files up to `fillMaxBytes`, or any file asked for whole, are filled hole by hole.
 *
 * Several connections for a sequential reader (#fillAhead):
 *  - How many pay is learned from the rate they bring (connection-ramp.ts), each time a read
 *    waits on the download in front of it.
 *  - Each extra connection is a fill over its own chunk ahead of the reader (CHUNK_SECONDS of
 *    a connection's rate, at least CHUNK_MIN_BYTES), one after another, so bytes still arrive
 *    in order for the reader, and none twice. Chunks are bounded claims, so their requests end
 *    where they do: only the open-ended download a read started is cut, once, and the bytes
 *    the origin had in flight past the cut are all it wastes (#fillAhead).
 *
 * Connections:
 *  - `DownloadSlots` caps them across files; this class caps them per file. At either cap a
 *    demand download stops one that can give way: a fill, or a demand download whose reads
 *    are served; across files also one of a file that has brought nothing for a while
 *    (download-slots.ts). The stopped one counts until it has really ended, so the cap holds
 *    at the origin too; then the file that asked tries again (across files, with the freed
 *    slot promised to it).
 *  - `continueWork` re-covers every waiting read: when a download ends, when a slot may be
 *    had after the file was refused one, and when reads were served while the file was
 *    starved (every connection busy with other waiting reads).
 *
 * The scheduler sees its file only through `ScheduledFile` and its downloads only through
 * `ScheduledDownload`, so it runs (and is tested) without a temp file or a network.
 */

/** A read this close ahead of a download's position waits for it rather than opening another connection... */
const REACH_MIN_BYTES = 4 * 1024 * 1024;
/** ...or as far as that download gets in this long at the file's current rate, if that is further. */
const REACH_SECONDS = 1;

const MiB = 1024 * 1024;
/** Each extra connection claims this much of one connection's transfer ahead... */
const CHUNK_SECONDS = 2;
/** ...and at least this much. */
const CHUNK_MIN_BYTES = 8 * MiB;

export class DownloadScheduler {
  // Set once.
  readonly #file: ScheduledFile;
  readonly #opts: SchedulerOptions;
  // Changed only from the event loop, by reads, download ends and the file's lifecycle.
  /** Running downloads; their claims never overlap. */
  readonly #downloads = new Set<ScheduledDownload>();
  /** Stopped downloads not yet ended: they still count against the per-file cap. */
  #ending = 0;
  /** Download the whole file, not only what reads ask for. */
  #fillAll = false;
  /** A waiting read found every connection of this file busy with other waiting reads. */
  #starved = false;
  /** When a download a read of this file needed last gave its connection to another file (it was stalled). */
  #yieldedAt = -Infinity;
  /** Cancelled or failed: nothing starts until `start` or `resume`. */
  #halted = false;
  /** Paused: only what a waiting read needs is downloaded (no fill, no read-ahead helpers). */
  #paused = false;
  #closed = false;
  /** Bytes are being dropped: new downloads wait until that is over. */
  #held: Promise<void> | null = null;
  /** The most connections this file ever used at once (stopping ones included). */
  peak = 0;
  /** Connections a sequential reader may have in front of it. */
  readonly #ramp: ConnectionRamp;
  /** Where the sequential reader that has extra connections last stood, and its window. */
  #sequential: { from: number; bound: number } | null = null;
  readonly #now: () => number;

  constructor (file: ScheduledFile, opts: SchedulerOptions) {
    this.#file = file;
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
    this.#ramp = new ConnectionRamp(opts.maxPerFile, this.#now);
  }

  /** Connections a sequential reader may have in front of it now. */
  get parallel (): number { return this.#ramp.parallel; }

  get active (): number { return this.#downloads.size; }

  /** The download whose claim holds `offset`. */
  claimant (offset: number): ScheduledDownload | undefined {
    for (const d of this.#downloads) if (d.position <= offset && offset < d.limit) return d;
    return undefined;
  }

  /**
   * The file was opened (or prefetched, or resumed at start): a file up to the fill size,
   * or any file when `all`, is filled whole. Clears a halt.
   */
  start (all: boolean): void {
    if (this.#closed) return;
    this.#halted = false;
    if (all || this.#file.size <= this.#opts.fillMaxBytes) this.#fillAll = true;
    if (this.#fillAll && !this.#paused) this.#fillNextHole();
  }

  /** Stops every download no waiting read needs; from now on only reads start downloads, and only as far as they wait. */
  pause (): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#sequential = null;
    const needed = this.#needed();
    for (const d of [...this.#downloads]) if (!needed.has(d)) this.#retire(d);
  }

  /** Ends a pause: a fill asked for before (an open, a prefetch, a resume at start) goes on. */
  unpause (): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#fillAll && !this.#halted && !this.#closed) this.#fillNextHole();
  }

  /** Clears a halt and cuts every back-off pause short. */
  resume (): void {
    this.#halted = false;
    for (const d of this.#downloads) d.retryNow();
  }

  /** A program waits for byte `missing`; fetch on to `wantEnd` (its read-ahead window). */
  demand (missing: number, wantEnd: number): void {
    // Paused, the reader's window (up to 64 MiB for a sequential one) would be background work by another name.
    this.#cover(missing, this.#paused ? Math.min(wantEnd, missing + PAUSED_WINDOW_BYTES) : wantEnd, 'demand');
  }

  /** A sequential reader will want [from, to) next. */
  readAhead (from: number, to: number): void {
    if (this.#halted || this.#closed || this.#paused) return;
    const missing = this.#file.firstMissing(from, to);
    if (missing >= 0) this.#cover(missing, to, 'fill');
  }

  /** Reads were served: connections they held may go to reads still waiting, here or elsewhere. */
  readsServed (): void {
    if (this.#starved) {
      this.#starved = false;
      this.#continueWork();
    }
    this.#opts.slots.poke();
  }

  /** The file's URL changed: downloads running with the old one stop, and what reads wait for starts again. */
  restart (): void {
    if (this.#closed || this.#halted) return;
    this.#stopAll();
    this.#continueWork(); // at the per-file cap, the stopped ones' ends start the rest
  }

  /** Cancel: stops every download; nothing starts until `start` or `resume`. */
  halt (): void {
    this.#halted = true;
    this.#stopAll();
  }

  /** Bytes are being dropped: stop, forget the fill, and start nothing until `until` settles. */
  reset (until: Promise<void>): void {
    this.#fillAll = false; // dropped bytes are fetched again only when something reads them
    this.#sequential = null; // nor ahead of a reader, until one waits again
    this.#ramp.reset();
    this.#stopAll();
    this.#held = until;
    const release = (): void => { if (this.#held === until) this.#held = null; };
    until.then(release, release);
  }

  /** For good: stops everything and asks for no more slots. */
  close (): void {
    this.#closed = true;
    this.#opts.slots.forget(this.#continueWork);
    this.#stopAll();
  }

  /**
   * Makes sure a download will bring byte `missing` and run on to `wantEnd`: the one whose
   * claim holds it if within reach, else a new one from `missing`. Never two for one byte.
   */
  #cover (missing: number, wantEnd: number, kind: DownloadKind): void {
    // Halted too: a cover put off while bytes were dropped must not undo a cancel or a failure.
    if (this.#closed || this.#halted) return;
    if (this.#held !== null) {
      const again = (): void => this.#cover(missing, wantEnd, kind);
      this.#held.then(again, again);
      return;
    }
    if (this.#paused && kind === 'fill') return;
    const bound = this.#fillAll && !this.#paused ? this.#file.size : wantEnd;
    const holder = this.claimant(missing);
    if (holder === undefined) {
      this.#spawn(kind, missing, this.#nextClaim(missing, this.#file.size), bound);
      return;
    }
    if (kind === 'demand') holder.kind = 'demand';
    if (kind === 'demand' && this.#splits(holder, missing)) {
      const split = this.#spawn(kind, missing, holder.limit, bound);
      if (split !== null) {
        holder.setLimit(missing); // the new download took the rest of the claim
        return;
      }
    }
    holder.allowUpTo(bound);
    if (kind === 'demand' && this.#opts.acceptRanges) this.#ramp.readerWaited(this.#file.presentBytes);
    this.#fillAhead(missing, wantEnd); // the reader's own window, even when the whole file is to be filled
  }

  /**
   * Keeps `parallel` downloads in front of a sequential reader whose next missing byte is at
   * or after `from`: the one there, then one chunk after another, each its own bounded claim,
   * so a chunk's request ends where the chunk does and no bytes the origin sent are thrown
   * away. Only a download whose claim is longer than a chunk (the open-ended one a read
   * started) is cut, once, a chunk ahead of where it stands. They run on past the
   * reader's window, as far as the chunks go. Also run when a download ends, so the chain
   * stays full while the reader reads what is already there.
   */
  #fillAhead (from: number, bound: number): void {
    const parallel = this.#ramp.parallel;
    if (parallel === 1 || this.#held !== null) return; // held: bytes are being dropped
    if (this.#closed || this.#halted || this.#paused) return;
    const size = this.#file.size;
    const start = this.#file.firstMissing(from, size);
    if (start < 0) return;
    const perConnection = this.#file.bytesPerSecond / Math.max(1, this.#downloads.size);
    // Whole MiB: claims are byte offsets in Range headers.
    const chunk = Math.max(CHUNK_MIN_BYTES, Math.floor(perConnection * CHUNK_SECONDS / MiB) * MiB);
    const reach = Math.max(bound, start + parallel * chunk);
    this.#sequential = { from: start, bound };
    const ahead = [...this.#downloads].filter(d => d.limit > start && d.position < reach);
    ahead.sort((a, b) => a.position - b.position);
    for (const d of ahead) d.allowUpTo(reach);
    while (ahead.length < parallel) {
      const last = ahead.at(-1);
      // A claim longer than a chunk is the open-ended one a read started: it is cut.
      const cut = last !== undefined && last.limit - last.position > chunk + CHUNK_MIN_BYTES;
      const at = last === undefined ? start : cut ? last.position + chunk : this.#file.firstMissing(last.limit, size);
      if (at < 0 || at >= reach || (cut && at + CHUNK_MIN_BYTES > last.limit)) return;
      const helper = this.#spawn('fill', at, this.#nextClaim(at, Math.min(size, at + chunk)), reach);
      if (helper === null) {
        this.#ramp.noneToBeHad(ahead.length);
        return;
      }
      if (cut) last.setLimit(at);
      ahead.push(helper);
    }
  }

  /** Where the next download after `from` stands, or `upTo` if none does before it: a new claim from `from` ends there. */
  #nextClaim (from: number, upTo: number): number {
    let end = upTo;
    for (const d of this.#downloads) if (d.position > from && d.position < end) end = d.position;
    return end;
  }

  /** A read this far past where `holder` stands is better served by a connection of its own. */
  #splits (holder: ScheduledDownload, missing: number): boolean {
    const reach = Math.max(REACH_MIN_BYTES, this.#file.bytesPerSecond * REACH_SECONDS);
    return this.#opts.acceptRanges && missing - holder.position > reach;
  }

  /** Starts a fill download at the first missing byte no download claims. */
  #fillNextHole (): void {
    const size = this.#file.size;
    let pos = this.#file.firstMissing(0, size);
    while (pos >= 0) {
      const holder = this.claimant(pos);
      if (holder === undefined) return this.#cover(pos, size, 'fill');
      pos = this.#file.firstMissing(holder.limit, size);
    }
  }

  /**
   * The file's progress as the connection slots judge it (DownloadSlots: a stalled file gives
   * its connections away, and takes none). Holding a connection, or asking while another of
   * its downloads runs, it is as stalled as its last byte says. Asking with none running, it
   * is starved, not stalled (it had no connection to stall on), unless it gave one away for
   * stalling, or its reads failed for a stall, since its last byte: stalled files never trade
   * connections among themselves.
   */
  #askerOrHolderProgressAt (asking: boolean): number {
    const file = this.#file;
    const stalledBefore = file.readsStalled || this.#yieldedAt >= file.lastProgressAt;
    return asking && this.#downloads.size === 0 && !stalledBefore ? performance.now() : file.lastProgressAt;
  }

  /**
   * Starts a download over [from, limit) within the per-file and overall caps; at a cap, a
   * demand download stops one no waiting read needs. Null when none could start now.
   */
  #spawn (kind: DownloadKind, from: number, limit: number, allowedEnd: number): ScheduledDownload | null {
    if (this.#downloads.size + this.#ending >= this.#opts.maxPerFile) {
      // The victim's end runs #continueWork, which starts this read's download.
      const victim = kind === 'demand' ? this.#leastNeeded() : undefined;
      if (victim !== undefined) this.#retire(victim);
      else if (kind === 'demand') this.#starved = true; // retried once some waiting read is served
      return null;
    }
    // The slot first: a download is made only once it can run.
    let download: ScheduledDownload | null = null;
    const slot: SlotHolder = {
      get kind () { return download?.kind ?? kind; },
      needed: () => download !== null && this.#needed().has(download),
      fileLastProgressAt: () => this.#askerOrHolderProgressAt(download === null),
      preempt: () => {
        if (download === null) return;
        // A fill, or a download no waiting read needs, gives way to any read; a needed one only for stalling.
        if (download.kind === 'demand' && this.#needed().has(download)) this.#yieldedAt = performance.now();
        this.#retire(download);
      },
    };
    if (!this.#opts.slots.acquire(slot, this.#continueWork)) return null;
    download = this.#opts.createDownload(kind, from, limit, allowedEnd);
    const first = this.#downloads.size === 0;
    this.#downloads.add(download);
    this.peak = Math.max(this.peak, this.#downloads.size + this.#ending);
    this.#opts.events.started(first);
    download.run().then(
      () => this.#ended(download, slot, null),
      (err: FsError) => this.#ended(download, slot, err)
    );
    return download;
  }

  /** A download that may give way to a waiting read: a fill one, else one no waiting read needs. */
  #leastNeeded (): ScheduledDownload | undefined {
    const all = [...this.#downloads];
    const fill = all.find(d => d.kind === 'fill');
    if (fill !== undefined) return fill;
    const needed = this.#needed();
    return all.find(d => !needed.has(d));
  }

  /** The downloads some waiting read depends on. Only asked when connections run short. */
  #needed (): Set<ScheduledDownload> {
    const needed = new Set<ScheduledDownload>();
    for (const w of this.#file.waitingReads()) {
      const missing = this.#file.firstMissing(w.offset, w.end);
      const d = missing >= 0 ? this.claimant(missing) : undefined;
      if (d !== undefined) needed.add(d);
    }
    return needed;
  }

  /** Stops one download and frees its claim at once; it counts against the cap until it has ended. */
  #retire (download: ScheduledDownload): void {
    if (!this.#downloads.delete(download)) return;
    this.#ending++;
    download.abort();
  }

  /** Stops every download; their ends are then ignored. */
  #stopAll (): void {
    for (const d of [...this.#downloads]) this.#retire(d);
  }

  #ended (download: ScheduledDownload, slot: SlotHolder, err: FsError | null): void {
    this.#opts.slots.release(slot);
    const current = this.#downloads.delete(download);
    if (!current) this.#ending--;
    if (this.#closed || this.#halted) return;
    if (current && err !== null) {
      // The origin failed for good: every download of this file would too.
      this.halt();
      this.#opts.events.failed(err);
      return;
    }
    if (this.#file.firstMissing(0, this.#file.size) < 0) return this.#opts.events.complete();
    this.#continueWork();
  }

  /** Starts what still needs a download: every waiting read first, then the fill. */
  readonly #continueWork = (): void => {
    if (this.#closed || this.#halted) return;
    for (const w of this.#file.waitingReads()) {
      const missing = this.#file.firstMissing(w.offset, w.end);
      if (missing >= 0) this.#cover(missing, w.end, 'demand');
    }
    if (this.#fillAll) this.#fillNextHole();
    if (this.#sequential !== null) this.#fillAhead(this.#sequential.from, this.#sequential.bound);
    if (this.#downloads.size === 0) this.#opts.events.idle();
  };
}
