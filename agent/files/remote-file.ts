import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { StorePool } from '../cache/store-pool';
import type { Catalogue, FileEntry } from '../catalogue/catalogue';
import type { EventHub } from '../control/event-hub';
import type { FileDetails, FileSummary } from '../control/protocol';
import { FsError } from '../errors';
import type { FileSource } from '../origin/file-source';
import { displayUrl, sameVersion, type OriginInfo, type RequestHeaders } from '../origin/origin-info';
import { probeSource } from '../origin/probe';
import type { StateDb } from '../state/state-db';
import type { TempFileStore } from '../store/temp-file-store';

/** What every remote file shares: where entries, stores, rows and events live. */
export interface RemoteFileDeps {
  catalogue: Catalogue;
  pool: StorePool;
  db: StateDb;
  events: EventHub;
  log: Logger;
  dispatcher: Dispatcher;
  /** True once the agent is stopping: the database may be closed. */
  stopping (): boolean;
}

/** A new source for a file (fsctl set-url), already probed: `now` is the version it serves. */
export interface NewSource {
  url: string;
  headers: RequestHeaders;
  urlCommand: readonly string[] | null;
  endpoints: FileSource;
  now: OriginInfo;
}

/** The mtime a file shows: the origin's Last-Modified, or `fallback`. */
export function mtimeOf (origin: OriginInfo, fallback: number): number {
  const t = origin.lastModified !== null ? Date.parse(origin.lastModified) : NaN;
  return Number.isNaN(t) ? fallback : t;
}

/**
 * One remote file, and everything the agent knows about it beyond its bytes: its entry in
 * the mount (the catalogue's, replaced whole on each change), its store (through the pool:
 * opened, dropped, replaced by a new version's), what its last bad copy hashed to, the epoch
 * that tells an open to drop the kernel's cached pages, the re-check of its origin after a
 * restart, and whether it leaves the mount when its last handle closes.
 *
 * Transitions that await (a new version, a new source, removal) run one at a time
 * (`#step`): each begins from the world the previous one left, and re-checks after its own
 * awaits that the file is still in the mount.
 */
export class RemoteFile {
  readonly id: string;
  readonly name: string;
  readonly #deps: RemoteFileDeps;
  #revalidating: Promise<void> | null = null;
  /** What the last copy that did not match its digest hashed to, while there is no good one. */
  #badDigest: string | null = null;
  /** Bumped when bytes that failed their digest are dropped: an open then drops the kernel's cached pages. */
  #contentEpoch = 0;
  /** Gone from its folder's index while open: leaves the mount when its last handle closes. */
  #removeWhenClosed = false;
  #steps: Promise<unknown> = Promise.resolve();

  constructor (entry: FileEntry, deps: RemoteFileDeps) {
    this.id = entry.id;
    this.name = entry.name;
    this.#deps = deps;
  }

  /** Its entry as the mount shows it now; undefined once it left the mount. */
  get entry (): FileEntry | undefined {
    const e = this.#deps.catalogue.get(this.name);
    return e?.id === this.id ? e : undefined;
  }

  get contentEpoch (): number { return this.#contentEpoch; }

  /** Runs one transition after the one before it has ended, whatever its outcome. */
  #step<T> (transition: () => Promise<T>): Promise<T> {
    const run = this.#steps.then(transition, transition);
    this.#steps = run.catch(() => {});
    return run;
  }

  /**
   * After a restart, with bytes from an earlier run: asks the origin whether it still serves
   * that version before an open may use them (opens wait for the answer).
   */
  checkAfterRestart (): void {
    this.#revalidating = this.revalidate().finally(() => { this.#revalidating = null; });
  }

  get revalidated (): Promise<void> { return this.#revalidating ?? Promise.resolve(); }

  /** Asks the origin whether it still serves the version we hold; drops our bytes if not. */
  async revalidate (): Promise<void> {
    const { log, dispatcher } = this.#deps;
    const entry = this.entry;
    if (entry === undefined) return;
    let now: OriginInfo;
    try {
      now = (await probeSource(dispatcher, entry.endpoints)).origin;
    } catch (err) {
      // Unknown: keep the bytes; every resumed request carries If-Range, so versions cannot mix.
      log.warn({ file: this.name, err: (err as Error).message }, 'could not re-check the origin; keeping cached bytes');
      return;
    }
    if (sameVersion(entry.origin, now) || this.#deps.stopping()) return;
    const changed = 'the file changed at the origin; dropping cached bytes of the old version';
    log.info({ file: this.name, size: now.size, etag: now.etag }, changed);
    await this.adoptNewVersion(now);
  }

  /**
   * The origin serves another version: the mount shows it at once (catalogue), the old one's
   * bytes are dropped, and only then does the database record the new version (so it never
   * names the new version beside the old one's ranges), with a `changed` event. An open
   * meanwhile waits for the drop (StorePool.ensure) and gets the new version's store. The
   * entry as it now is, or null when it is not in the mount.
   */
  adoptNewVersion (now: OriginInfo): Promise<FileEntry | null> {
    return this.#step(() => this.#adopt(now));
  }

  async #adopt (now: OriginInfo): Promise<FileEntry | null> {
    const { catalogue, pool, db, events } = this.#deps;
    const current = this.entry;
    if (current === undefined) return null;
    const updated = { ...current, origin: now, mtimeMs: mtimeOf(now, Date.now()) };
    catalogue.replace(updated);
    await pool.drop(this.id, 'the file changed at the origin');
    const latest = this.entry;
    if (latest === undefined) return null; // removed meanwhile: its row went with it
    db.replaceOrigin(this.id, latest.origin, latest.mtimeMs);
    const { size, etag, lastModified } = now;
    events.publish({ type: 'changed', file: this.name, size, etag, lastModified, at: Date.now() });
    return latest;
  }

  /**
   * A new source for the file (fsctl set-url), probed by the caller. The same version keeps
   * every byte; another is adopted as a changed origin is. A cancelled file stays cancelled
   * either way (fsctl resume undoes a cancel, a new source does not). True when the bytes were kept.
   */
  setSource (source: NewSource): Promise<boolean> {
    return this.#step(async () => {
      const { catalogue, pool, db, log } = this.#deps;
      const before = this.entry;
      if (before === undefined) throw new FsError('ENOENT', `${this.name} is no longer in the mount`);
      const cancelled = pool.get(this.id)?.state === 'cancelled';
      const keptBytes = sameVersion(before.origin, source.now);
      const current = keptBytes ? before : await this.#adopt(source.now);
      if (current === null) throw new FsError('ENOENT', `${this.name} is no longer in the mount`);
      const { url, headers, urlCommand, endpoints } = source;
      catalogue.replace({ ...current, url, headers, urlCommand, endpoints });
      db.replaceSource(this.id, url, headers, urlCommand);
      current.endpoints.close();
      pool.get(this.id)?.setEndpoints(endpoints);
      // Another version's bytes went with the old store, and its cancel with them: cancel the new one.
      // The source is installed by now: a failure here must not undo it (the caller closes what failed).
      const latest = this.entry;
      if (cancelled && !keptBytes && latest !== undefined) {
        await pool.ensure(latest).then(
          store => store.cancel(`download of ${this.name} was cancelled`),
          (err: Error) => log.warn({ file: this.name, err: err.message }, 'could not cancel the new version')
        );
      }
      log.info({ file: this.name, url: displayUrl(url), urlCommand: urlCommand !== null, keptBytes }, 'new source');
      return keptBytes;
    });
  }

  /** Leaves the mount: its entry, its bytes and its row go; programs that have it open get EIO from now on. */
  remove (): Promise<void> {
    return this.#step(async () => {
      const { catalogue, pool, db, log, events } = this.#deps;
      const entry = this.entry;
      if (entry === undefined) return;
      catalogue.remove(this.name);
      entry.endpoints.close();
      await pool.drop(this.id, `${this.name} was removed from the mount`);
      db.deleteFile(this.id);
      log.info({ file: this.name }, 'file removed');
      events.publish({ type: 'removed', file: this.name, at: Date.now() });
    });
  }

  /**
   * An open: the store of the version the mount shows. A new version adopted (or the file
   * removed) while the store was being acquired leaves it holding the old version's store,
   * which is being closed: it is given back and the open tries again.
   */
  async open (): Promise<TempFileStore> {
    const { pool } = this.#deps;
    await this.revalidated;
    for (let attempt = 1; ; attempt++) {
      const current = this.entry;
      if (current === undefined) throw new FsError('ENOENT', `${this.name} is no longer in the mount`);
      const store = await pool.acquire(current);
      const now = this.entry;
      if (now !== undefined && sameVersion(now.origin, store.source.origin)) return store;
      pool.release(store);
      if (now === undefined) void pool.drop(this.id, `${this.name} was removed from the mount`);
      if (attempt === 3) throw new FsError('EIO', `${this.name} changed at the origin while it was being opened`);
    }
  }

  /** A handle closed: true when the file should now leave the mount (gone from its folder while open). */
  released (store: TempFileStore): boolean {
    this.#deps.pool.release(store);
    if (store.openHandles > 0 || !this.#removeWhenClosed || this.entry === undefined) return false;
    this.#removeWhenClosed = false;
    return true;
  }

  /** Gone from its folder's index: true when it can go now, false when it goes with its last handle. */
  leaveWhenClosed (): boolean {
    if ((this.#deps.pool.get(this.id)?.openHandles ?? 0) === 0) return true;
    this.#removeWhenClosed = true;
    return false;
  }

  /** Back in its folder's index: it stays when its last handle closes. */
  keepInMount (): void { this.#removeWhenClosed = false; }

  /** A whole copy was hashed: a bad one is remembered, and cached pages of it must not reach a new open. */
  verified (ok: boolean, actual: string): void {
    if (ok) {
      this.#badDigest = null;
      return;
    }
    this.#badDigest = actual;
    this.#contentEpoch++;
  }

  /** The file as `fsctl ls` shows it. */
  summary (entry: FileEntry = this.entry!): FileSummary {
    const { pool } = this.#deps;
    const store = pool.get(this.id);
    const present = pool.presentBytes(this.id);
    const state = store?.state ?? (present === entry.origin.size ? 'complete' : 'idle');
    const source = entry.endpoints.describe();
    const stalledSince = store?.stalledSince ?? null;
    return {
      name: entry.name,
      url: displayUrl(source.url ?? entry.url),
      size: entry.origin.size,
      presentBytes: present,
      state,
      // A rate only while bytes arrive: the meter's average would show one for seconds after a stall.
      bytesPerSecond: state === 'downloading' ? Math.round(store?.bytesPerSecond ?? 0) : 0,
      openHandles: store?.openHandles ?? 0,
      waiters: store?.waiterCount ?? 0,
      pinned: pool.isPinned(this.id),
      paused: pool.isPaused(this.id),
      lastError: store?.lastError?.message ?? null,
      stalled: stalledSince === null
        ? null
        : { since: stalledSince, cause: store?.retrying?.message ?? source.error ?? 'the origin has sent nothing (connection open)' },
      urlExpiresAt: source.expiresAt,
      source: entry.endpoints.kind,
      urlRefreshes: source.refreshes,
      verification: this.#verification(entry, store?.state ?? null),
    };
  }

  /** The file as `fsctl info` shows it. */
  details (entry: FileEntry = this.entry!): FileDetails {
    const { pool } = this.#deps;
    const summary = this.summary(entry);
    const source = entry.endpoints.describe();
    const store = pool.get(this.id);
    const rate = summary.bytesPerSecond;
    const downloading = summary.state === 'downloading' || summary.state === 'stalled';
    return {
      ...summary,
      ranges: pool.ranges(this.id),
      etaSeconds: downloading && rate > 0 ? Math.round((entry.origin.size - summary.presentBytes) / rate) : null,
      downloadPosition: store?.downloadPositionFor(store.firstMissing(0)) ?? null,
      connections: { active: store?.activeDownloads ?? 0, peak: store?.peakDownloads ?? 0 },
      origin: { etag: entry.origin.etag, lastModified: entry.origin.lastModified, acceptRanges: entry.origin.acceptRanges },
      addedAt: new Date(entry.addedAt).toISOString(),
      retrying: store?.retrying?.message ?? null,
      urlCommand: entry.urlCommand === null ? null : { argv: [...entry.urlCommand], refreshes: source.refreshes, error: source.error },
    };
  }

  #verification (entry: FileEntry, state: FileSummary['state'] | null): FileSummary['verification'] {
    const digest = entry.origin.digest;
    if (digest === null) return null;
    const { algorithm, source, hex: expected } = digest;
    if (this.#deps.pool.isVerified(this.id)) return { algorithm, source, expected, state: 'verified', actual: expected };
    const bad = this.#badDigest;
    return { algorithm, source, expected, state: state === 'error' && bad !== null ? 'failed' : 'pending', actual: bad };
  }
}
