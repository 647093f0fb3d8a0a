import type { Logger } from 'pino';
import type { StateDb } from './state-db';

/** Longest time written bytes go uncommitted: bounds what a crash of the agent makes us download again. */
const COMMIT_INTERVAL_MS = 1000;
/** Bytes written since the last commit that trigger one before the interval is up. */
const COMMIT_BYTES = 16 * 1024 * 1024;
/** Longest time committed ranges stay unsynced: bounds what a power cut makes us download again. */
const SYNC_INTERVAL_MS = 30_000;

/** What the committer needs of a store. */
export interface CommitSource {
  readonly id: string;
  /**
   * Snapshots the present ranges, fdatasyncs the temp file, then calls `save` with the
   * snapshot in the same synchronous turn, unless the store dropped bytes meanwhile
   * (then nothing is saved: the drop already wrote its own ranges).
   */
  syncAndSave (save: (ranges: Array<[number, number]>) => void): Promise<void>;
  /** The present ranges now (every one written to the temp file), or null once it is closed. */
  snapshot (): Array<[number, number]> | null;
}

/**
 * Commits each file's ranges to SQLite, so that the database never claims a byte that is
 * not on disk, without an fsync on the write path:
 * - every second (or 16 MiB), ranges whose bytes were written, stamped with the boot they
 *   were written in: the page cache keeps those bytes if the agent dies, so they are
 *   trusted after a restart in the same boot, never after a reboot;
 * - every 30 s, and when a file closes, ranges after an fdatasync of the temp file: trusted
 *   after anything.
 * Without a boot id (a platform that gives none) every commit syncs first.
 */
export class RangeCommitter {
  readonly #db: StateDb;
  readonly #log: Logger;
  readonly #bootId: string | null;
  /** Stores with uncommitted writes -> bytes written since their last commit. */
  readonly #dirty = new Map<CommitSource, number>();
  /** Stores whose last commit was unsynced -> when their ranges were last synced. */
  readonly #unsyncedSince = new Map<CommitSource, number>();
  readonly #inFlight = new Map<CommitSource, Promise<void>>();
  readonly #timer: NodeJS.Timeout;
  #commits = 0;

  constructor (db: StateDb, log: Logger, bootId: string | null = null) {
    this.#db = db;
    this.#log = log;
    this.#bootId = bootId;
    this.#timer = setInterval(() => {
      for (const s of [...this.#dirty.keys()]) void this.commit(s);
      const now = performance.now();
      for (const [s, since] of [...this.#unsyncedSince]) if (now - since >= SYNC_INTERVAL_MS) void this.commit(s, true);
    }, COMMIT_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Transactions committed since start: for the write-rate figure in status. */
  get commits (): number { return this.#commits; }

  noteWrite (source: CommitSource, bytes: number): void {
    const pending = (this.#dirty.get(source) ?? 0) + bytes;
    this.#dirty.set(source, pending);
    if (pending >= COMMIT_BYTES && !this.#inFlight.has(source)) void this.commit(source);
  }

  /**
   * Commits one store now: unsynced when its last sync is recent, after a sync when `durable`
   * or when the last sync is due. A call while a sync runs waits for it and commits again if needed.
   */
  commit (source: CommitSource, durable = false): Promise<void> {
    const running = this.#inFlight.get(source);
    if (running !== undefined) return running.then(() => this.commit(source, durable));
    const since = this.#unsyncedSince.get(source);
    const syncDue = durable || this.#bootId === null || (since !== undefined && performance.now() - since >= SYNC_INTERVAL_MS);
    if (!this.#dirty.has(source) && !(syncDue && since !== undefined)) return Promise.resolve();
    this.#dirty.delete(source);
    if (!syncDue) {
      const ranges = source.snapshot();
      if (ranges !== null) {
        this.#db.saveUnsyncedRanges(source.id, ranges, this.#bootId!);
        this.#commits++;
        if (since === undefined) this.#unsyncedSince.set(source, performance.now());
      }
      return Promise.resolve();
    }
    this.#unsyncedSince.delete(source);
    const p = source.syncAndSave(ranges => {
      this.#db.saveRanges(source.id, ranges);
      this.#commits++;
    }).catch((err: unknown) => {
      this.#log.warn({ err, id: source.id }, 'could not sync a temp file; its new ranges stay uncommitted');
    }).finally(() => this.#inFlight.delete(source));
    this.#inFlight.set(source, p);
    return p;
  }

  forget (source: CommitSource): void {
    this.#dirty.delete(source);
    this.#unsyncedSince.delete(source);
  }

  stop (): void {
    clearInterval(this.#timer);
  }
}
