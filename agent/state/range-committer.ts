import type { Logger } from 'pino';
import type { StateDb } from './state-db';

/** Longest time written bytes go uncommitted: bounds what a crash makes us download again. */
const COMMIT_INTERVAL_MS = 1000;
/** Bytes written since the last commit that trigger one before the interval is up. */
const COMMIT_BYTES = 16 * 1024 * 1024;

/** What the committer needs of a store. */
export interface CommitSource {
  readonly id: string;
  /**
   * Snapshots the present ranges, fdatasyncs the temp file, then calls `save` with the
   * snapshot in the same synchronous turn, unless the store dropped bytes meanwhile
   * (then nothing is saved: the drop already wrote its own ranges).
   */
  syncAndSave (save: (ranges: Array<[number, number]>) => void): Promise<void>;
}

/**
 * Commits each file's ranges to SQLite after its bytes are synced, so the database never
 * claims a byte that is not on disk. Batched (at most every second, or every 16 MiB
 * written) so neither the database nor fsync sits on the read or write path.
 */
export class RangeCommitter {
  readonly #db: StateDb;
  readonly #log: Logger;
  /** Stores with uncommitted writes -> bytes written since their last commit. */
  readonly #dirty = new Map<CommitSource, number>();
  readonly #inFlight = new Map<CommitSource, Promise<void>>();
  readonly #timer: NodeJS.Timeout;
  #commits = 0;

  constructor (db: StateDb, log: Logger) {
    this.#db = db;
    this.#log = log;
    this.#timer = setInterval(() => { for (const s of [...this.#dirty.keys()]) void this.commit(s); }, COMMIT_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Transactions committed since start: for the write-rate figure in status. */
  get commits (): number { return this.#commits; }

  noteWrite (source: CommitSource, bytes: number): void {
    const pending = (this.#dirty.get(source) ?? 0) + bytes;
    this.#dirty.set(source, pending);
    if (pending >= COMMIT_BYTES && !this.#inFlight.has(source)) void this.commit(source);
  }

  /** Syncs and commits one store now; a second call while one runs waits for it and commits again if needed. */
  commit (source: CommitSource): Promise<void> {
    const running = this.#inFlight.get(source);
    if (running !== undefined) return running.then(() => (this.#dirty.has(source) ? this.commit(source) : undefined));
    if (!this.#dirty.has(source)) return Promise.resolve();
    this.#dirty.delete(source);
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
  }

  stop (): void {
    clearInterval(this.#timer);
  }
}
