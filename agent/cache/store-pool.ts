import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { FileEntry } from '../catalogue/catalogue';
import { FsError } from '../errors';
import { rangeBlockBytes } from '../store/range-set';
import type { StoreObserver, StoreOptions } from '../store/store-contract';
import { TempFileStore } from '../store/temp-file-store';
import type { RangeCommitter } from '../state/range-committer';
import type { StateDb } from '../state/state-db';
import { CacheQuota } from './cache-quota';

/** A temp file's name: the file's id (Catalogue.entryId) and `.part`. */
const TEMP_FILE_NAME = /^([0-9a-f]{24})\.part$/;

export interface PoolOptions {
  cacheDir: string;
  maxBytes: number;
  /** Drop a file's cached bytes once its last handle closes (unless pinned). */
  evictOnClose: boolean;
  store: Omit<StoreOptions, 'quota' | 'observer'>;
  db: StateDb;
  committer: RangeCommitter;
  log: Logger;
  /** The agent's own observer (logs, status); the pool adds persistence before each of its handlers. */
  observer: StoreObserver;
  /** False when the cache folder's filesystem allocates a temp file's full size: the quota then counts full sizes. */
  sparseFiles: boolean;
}

/** What the pool knows of a file whose store is not open: what the database says it holds. */
interface Resting {
  ranges: Array<[number, number]>;
  lastAccessAt: number;
  /** Sums of the ranges, taken once: bytes present, and disk they take in whole blocks. */
  bytes: number;
  blockBytes: number;
}

/**
 * The temp-file stores of all files, created on demand from what the database says is on
 * disk; the cache quota and its eviction; and persistence of every store's ranges.
 */
export class StorePool {
  readonly quota: CacheQuota;
  readonly #opts: PoolOptions;
  readonly #stores = new Map<string, TempFileStore>();
  readonly #creating = new Map<string, Promise<TempFileStore>>();
  /** Drops in flight: no store of that file is created until its old one is closed and its temp file gone. */
  readonly #dropping = new Map<string, Promise<void>>();
  readonly #resting = new Map<string, Resting>();
  /** Each known file's size, for the quota where files do not stay sparse. */
  readonly #sizes = new Map<string, number>();
  readonly #pinned = new Set<string>();
  /** Files paused (fsctl pause): their stores download only what programs wait for. */
  readonly #paused = new Set<string>();
  readonly #observer: StoreObserver;
  /** Files whose bytes on disk hashed to their digest (kept in the database too). */
  readonly #verified = new Set<string>();
  /** Set by closeAll: the database may be closed from then on. */
  #closed = false;

  constructor (opts: PoolOptions) {
    this.#opts = opts;
    this.quota = new CacheQuota(
      opts.maxBytes, (need, except) => this.#evict(need, except), opts.log, opts.sparseFiles ? null : id => this.#sizes.get(id)
    );
    const { db, committer, observer } = opts;
    // Every handler listed, none spread: an agent handler can never be dropped unseen.
    this.#observer = {
      onWrite: (store, bytes) => {
        committer.noteWrite(store, bytes);
        observer.onWrite?.(store, bytes);
      },
      onDiscard: store => {
        committer.forget(store);
        db.saveRanges(store.id, []);
        if (this.#verified.delete(store.id)) db.setVerified(store.id, false);
        observer.onDiscard?.(store);
      },
      beforeClose: async store => {
        await committer.commit(store, true); // synced: a file at rest survives a reboot
        await observer.beforeClose?.(store);
      },
      onStateChange: (store, state, err) => {
        db.setState(store.id, state, err?.message ?? null);
        observer.onStateChange?.(store, state, err);
      },
      onRetry: (store, err, delayMs, attempt, withoutProgress) => observer.onRetry?.(store, err, delayMs, attempt, withoutProgress),
      onWaitersChanged: store => observer.onWaitersChanged?.(store),
      onVerified: (store, ok, actual) => {
        if (ok) this.#verified.add(store.id); else this.#verified.delete(store.id);
        db.setVerified(store.id, ok);
        observer.onVerified?.(store, ok, actual);
      },
    };
  }

  /** Whether the file's bytes on disk hashed to its digest. */
  isVerified (id: string): boolean {
    return this.#verified.has(id);
  }

  /** Registers a file known from the database: its ranges count against the quota from now on. */
  addResting (
    id: string, size: number, ranges: Array<[number, number]>, lastAccessAt: number, pinned: boolean, verified = false, paused = false
  ): void {
    if (paused) this.#paused.add(id);
    this.#sizes.set(id, size);
    if (verified) this.#verified.add(id);
    if (ranges.length > 0) {
      let bytes = 0;
      let blockBytes = 0;
      for (const [s, e] of ranges) {
        bytes += e - s;
        blockBytes += rangeBlockBytes(s, e);
      }
      this.#resting.set(id, { ranges, lastAccessAt, bytes, blockBytes });
      this.quota.setAllocated(id, blockBytes);
    }
    if (pinned) this.#pinned.add(id);
  }

  get (id: string): TempFileStore | undefined { return this.#stores.get(id); }

  /** Bytes of a file on disk, whether or not its store is open. */
  presentBytes (id: string): number {
    const store = this.#stores.get(id);
    if (store !== undefined) return store.presentBytes;
    return this.#resting.get(id)?.bytes ?? 0;
  }

  /** The committed ranges of a file, whether or not its store is open. */
  ranges (id: string): Array<[number, number]> {
    return this.#stores.get(id)?.ranges() ?? this.#resting.get(id)?.ranges ?? [];
  }

  stores (): IterableIterator<TempFileStore> { return this.#stores.values(); }
  isPinned (id: string): boolean { return this.#pinned.has(id); }
  isPaused (id: string): boolean { return this.#paused.has(id); }

  /** fsctl pause/resume: kept in the database, and applied to the file's store if it has one. */
  setPaused (id: string, paused: boolean): void {
    if (paused) this.#paused.add(id); else this.#paused.delete(id);
    this.#opts.db.setPaused(id, paused);
    this.#stores.get(id)?.setPaused(paused);
  }

  /**
   * The store of a file, created if needed, without opening a handle (background resume).
   * While the file is being dropped it waits for the drop to end: a store created meanwhile
   * would open the temp file the drop is about to delete.
   */
  ensure (entry: FileEntry): Promise<TempFileStore> {
    const dropping = this.#dropping.get(entry.id);
    if (dropping !== undefined) return dropping.then(() => this.ensure(entry));
    const existing = this.#stores.get(entry.id);
    if (existing !== undefined) return Promise.resolve(existing);
    let pending = this.#creating.get(entry.id);
    if (pending === undefined) {
      pending = this.#create(entry).finally(() => this.#creating.delete(entry.id));
      this.#creating.set(entry.id, pending);
    }
    return pending;
  }

  /** Opens a handle: the store, with its download started. */
  async acquire (entry: FileEntry): Promise<TempFileStore> {
    const store = await this.ensure(entry);
    store.openHandles++;
    store.lastAccessAt = Date.now();
    store.startDownload();
    return store;
  }

  release (store: TempFileStore): void {
    // The kernel sends a file's release when its last program closes it, which may be after
    // shutdown closed the database: a lazy unmount keeps open files' connection alive.
    if (this.#closed) return;
    store.openHandles--;
    store.lastAccessAt = Date.now();
    if (store.openHandles > 0) return;
    this.#opts.db.setLastAccess(store.id, store.lastAccessAt);
    if (this.#opts.evictOnClose && !this.#pinned.has(store.id)) {
      void store.discard('evicted on close').catch(err => this.#opts.log.warn({ err, file: store.source.name }, 'evict on close failed'));
    } else {
      this.quota.poke(); // its bytes may now be evicted for a waiting write
    }
  }

  setPinned (id: string, pinned: boolean): void {
    if (pinned) this.#pinned.add(id); else this.#pinned.delete(id);
    this.#opts.db.setPinned(id, pinned);
    if (!pinned) this.quota.poke();
  }

  /**
   * Forgets a file entirely (removed, or replaced by a new version at the origin): open
   * handles get EIO from now on, and its temp file and ranges are deleted.
   */
  drop (id: string, reason: string): Promise<void> {
    let dropping = this.#dropping.get(id);
    if (dropping === undefined) {
      dropping = this.#drop(id, reason).finally(() => this.#dropping.delete(id));
      this.#dropping.set(id, dropping);
    }
    return dropping;
  }

  async #drop (id: string, reason: string): Promise<void> {
    const store = this.#stores.get(id) ?? await this.#creating.get(id)?.catch(() => undefined);
    this.#stores.delete(id);
    this.#resting.delete(id);
    this.#verified.delete(id); // the database row goes, or gets a new version (verified = 0)
    if (store !== undefined) {
      this.#opts.committer.forget(store);
      await store.close(reason); // its last commit may still land here
      this.#opts.committer.forget(store);
    }
    // Un-claim in the database first, then delete: it never claims bytes that are gone.
    // The quota hears of the space only once it is free.
    this.#opts.db.saveRanges(id, []);
    await fs.rm(this.#path(id), { force: true });
    this.quota.setAllocated(id, 0);
    this.#sizes.delete(id);
  }

  /** Fails every waiter and closes every store, committing ranges on the way out. */
  async closeAll (reason: string): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#stores.values()].map(s => s.close(reason)));
  }

  /**
   * Deletes temp files in the cache dir that no catalogued file claims. Only names the agent
   * makes itself are touched: the cache dir may be a folder that also holds the user's files.
   */
  async sweepOrphans (known: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const name of await fs.readdir(this.#opts.cacheDir)) {
      const m = TEMP_FILE_NAME.exec(name);
      if (m === null || known.has(m[1])) continue;
      await fs.rm(path.join(this.#opts.cacheDir, name), { force: true });
      removed++;
    }
    return removed;
  }

  #path (id: string): string {
    return path.join(this.#opts.cacheDir, `${id}.part`);
  }

  async #create (entry: FileEntry): Promise<TempFileStore> {
    const resting = this.#resting.get(entry.id);
    this.#sizes.set(entry.id, entry.origin.size);
    const store = await TempFileStore.create(
      { id: entry.id, name: entry.name, endpoints: entry.endpoints, origin: entry.origin, verified: this.#verified.has(entry.id) },
      this.#path(entry.id),
      { ...this.#opts.store, quota: this.quota, observer: this.#observer },
      resting?.ranges ?? []
    );
    if (resting !== undefined) store.lastAccessAt = resting.lastAccessAt;
    if (this.#paused.has(entry.id)) store.setPaused(true);
    this.#resting.delete(entry.id);
    this.#stores.set(entry.id, store);
    this.quota.setAllocated(entry.id, store.blockBytes);
    if (store.trimmedAtCreate) {
      this.#opts.log.warn({ file: entry.name }, 'temp file was shorter than its saved ranges; they were trimmed');
      this.#opts.db.saveRanges(entry.id, store.ranges());
    }
    return store;
  }

  /** Drops one file's cached bytes now; refused while a program has it open. Resolves with the bytes freed. */
  async evictFile (id: string): Promise<number> {
    const store = this.#stores.get(id);
    if (store !== undefined && store.openHandles > 0) {
      throw new FsError('EBUSY', `${store.source.name} is open (${store.openHandles} handle(s)); close it first`);
    }
    const bytes = store?.blockBytes ?? this.#resting.get(id)?.blockBytes ?? 0;
    await this.#dropBytes(id, store, 'evicted on request');
    return bytes;
  }

  /** Drops the resting bytes of every file that is neither open, pinned nor downloading. */
  async evictAll (): Promise<number> {
    let freed = 0;
    for (const c of this.#candidates(null)) freed += await this.evictFile(c.id).catch(() => 0);
    return freed;
  }

  /** The quota's evictor: whole files, least recently read first, never open or pinned ones. */
  async #evict (need: number, exceptId: string): Promise<number> {
    let freed = 0;
    for (const c of this.#candidates(exceptId)) {
      if (freed >= need) break;
      await this.#dropBytes(c.id, c.store, 'evicted to keep the cache under its quota');
      freed += c.bytes;
      this.#opts.log.info({ id: c.id, bytes: c.bytes }, 'evicted cached bytes');
    }
    return freed;
  }

  /** Files whose bytes may go, least recently read first: never open, pinned or downloading ones. */
  #candidates (exceptId: string | null): Array<{ id: string; at: number; bytes: number; store?: TempFileStore }> {
    const out: Array<{ id: string; at: number; bytes: number; store?: TempFileStore }> = [];
    for (const [id, r] of this.#resting) {
      if (id !== exceptId && !this.#pinned.has(id)) out.push({ id, at: r.lastAccessAt, bytes: r.blockBytes });
    }
    for (const store of this.#stores.values()) {
      const resting = store.openHandles === 0 && store.activeDownloads === 0 && store.blockBytes > 0;
      if (store.id !== exceptId && resting && !this.#pinned.has(store.id)) {
        out.push({ id: store.id, at: store.lastAccessAt, bytes: store.blockBytes, store });
      }
    }
    return out.sort((a, b) => a.at - b.at);
  }

  async #dropBytes (id: string, store: TempFileStore | undefined, reason: string): Promise<void> {
    if (store !== undefined) return store.discard(reason);
    // No store: un-claim in the database, delete the temp file, then give the space to the quota.
    this.#resting.delete(id);
    this.#opts.db.saveRanges(id, []);
    await fs.rm(this.#path(id), { force: true });
    this.quota.setAllocated(id, 0);
  }
}
