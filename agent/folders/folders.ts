import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { FileEntry } from '../catalogue/catalogue';
import { validateName } from '../catalogue/names';
import type { FolderAddParams, FolderResult, FolderSummary } from '../control/protocol';
import { eachLimited } from '../each-limited';
import { FsError, toFsError } from '../errors';
import { displayUrl, sameVersion, type OriginInfo, type RequestHeaders } from '../origin/origin-info';
import { probeOrigin } from '../origin/probe';
import type { FolderRecord, StateDb } from '../state/state-db';
import { folderUrl, scanFolder, type ScannedFile } from './folder-scan';

/** Files probed at once while a folder is added or refreshed. */
const PROBE_CONCURRENCY = 8;
/** The shortest --refresh-every: an index read more often than this is a load on the origin, not a sync. */
const MIN_REFRESH_EVERY_MS = 10_000;

/** What the folders need of the agent: the catalogue's files, and adding and removing them. */
export interface FolderHost {
  readonly dispatcher: Dispatcher;
  readonly log: Logger;
  /** The files that came from `folder`. */
  filesOf (folder: string): FileEntry[];
  get (name: string): FileEntry | undefined;
  /** Adds a probed file as part of `folder`; throws FsError (a name taken, say). */
  addProbed (name: string, url: string, headers: RequestHeaders, origin: OriginInfo, folder: string): FileEntry;
  /** Takes a file out of the mount now, or once its last handle closes; 'kept' for a pinned one. */
  retire (entry: FileEntry): Promise<'removed' | 'when-closed' | 'kept'>;
  /** The file is listed again: it stays, even if a refresh before meant to remove it once closed. */
  keep (entry: FileEntry): void;
  /** The origin serves another version of `entry`: drop its bytes and record the new one. */
  adoptNewVersion (entry: FileEntry, now: OriginInfo): Promise<unknown>;
}

interface FolderState {
  record: FolderRecord;
  timer: NodeJS.Timeout | null;
  /** The refresh running now, which another asks to share. */
  running: Promise<FolderResult> | null;
  lastRefreshAt: number | null;
  lastError: string | null;
}

/**
 * Remote folders added whole: each is an index page (and its subfolders') whose files are
 * kept in the mount under one name, read again on `refresh` (and every `refreshEveryMs`):
 * new files appear, files gone from the index leave (once closed; a pinned one stays), and
 * a changed file is treated as a changed origin. Sizes and validators come from each file's
 * own HEAD, never from the page.
 */
export class Folders {
  readonly #host: FolderHost;
  readonly #db: StateDb;
  readonly #folders = new Map<string, FolderState>();
  #closed = false;

  constructor (host: FolderHost, db: StateDb) {
    this.#host = host;
    this.#db = db;
  }

  /** The folders saved by an earlier run; periodic refreshes start again. */
  load (): void {
    for (const record of this.#db.folders()) this.#schedule(this.#track(record));
  }

  list (): FolderSummary[] {
    return [...this.#folders.values()].map(s => this.#summary(s));
  }

  async add (params: FolderAddParams): Promise<FolderResult> {
    const url = folderUrl(params.url);
    const name = validateName(params.name ?? defaultFolderName(url));
    const existing = this.#folders.get(name);
    if (existing !== undefined) {
      if (existing.record.url === url) return await this.refresh(name); // adding it again: brings it up to date
      throw new FsError('EEXIST', `the folder ${name} is already in the mount, from ${displayUrl(existing.record.url)}`);
    }
    if (this.#host.get(name) !== undefined) throw new FsError('EEXIST', `${name} is a file in the mount, not a folder`);
    const refreshEveryMs = params.refreshEveryMs ?? null;
    if (refreshEveryMs !== null && refreshEveryMs < MIN_REFRESH_EVERY_MS) {
      throw new FsError('EINVAL', `refresh-every must be at least ${MIN_REFRESH_EVERY_MS / 1000} s`);
    }
    const record: FolderRecord = {
      name,
      url,
      headers: params.headers ?? {},
      include: params.include ?? [],
      exclude: params.exclude ?? [],
      depth: params.depth ?? null,
      refreshEveryMs,
      addedAt: Date.now(),
    };
    // Read it once before saving anything: a folder that cannot be read is not added.
    const scan = await scanFolder(this.#host.dispatcher, url, record.headers, record);
    if (this.#folders.has(name)) throw new FsError('EEXIST', `the folder ${name} was added meanwhile`);
    this.#db.insertFolder(record);
    const state = this.#track(record);
    return await this.#read(state, () => this.#sync(state, scan));
  }

  /** Reads the folder's index again and brings the mount in line with it. */
  async refresh (name: string): Promise<FolderResult> {
    const state = this.#folders.get(name);
    if (state === undefined) throw new FsError('ENOENT', `no folder named ${name} in the mount (fsctl folders lists them)`);
    return await this.#read(state, async () => {
      const { record } = state;
      return await this.#sync(state, await scanFolder(this.#host.dispatcher, record.url, record.headers, record));
    });
  }

  /** Starts keeping a folder: its state, before its first read. */
  #track (record: FolderRecord): FolderState {
    const state: FolderState = { record, timer: null, running: null, lastRefreshAt: null, lastError: null };
    this.#folders.set(record.name, state);
    return state;
  }

  /**
   * One read of a folder at a time: a caller that comes while one runs shares it. A failure
   * is kept for fsctl folders; the next periodic read is scheduled once it ends.
   */
  async #read (state: FolderState, work: () => Promise<FolderResult>): Promise<FolderResult> {
    if (state.running !== null) return await state.running;
    if (state.timer !== null) clearTimeout(state.timer);
    state.running = work();
    try {
      return await state.running;
    } catch (err) {
      state.lastError = toFsError(err).message;
      throw err;
    } finally {
      state.running = null;
      this.#schedule(state);
    }
  }

  /** Forgets a folder; the caller removes its files. */
  forget (name: string): FolderRecord {
    const state = this.#folders.get(name);
    if (state === undefined) throw new FsError('ENOENT', `no folder named ${name} in the mount`);
    if (state.timer !== null) clearTimeout(state.timer);
    this.#folders.delete(name);
    this.#db.deleteFolder(name);
    return state.record;
  }

  close (): void {
    this.#closed = true;
    for (const s of this.#folders.values()) if (s.timer !== null) clearTimeout(s.timer);
  }

  async #sync (state: FolderState, scan: Awaited<ReturnType<typeof scanFolder>>): Promise<FolderResult> {
    const { record } = state;
    const result: FolderResult = {
      folder: record.name,
      added: [],
      changed: [],
      removed: [],
      removeWhenClosed: [],
      keptPinned: [],
      unchanged: 0,
      failed: scan.rejected.map(r => ({ name: `${record.name}/${r.path}`, error: r.reason })),
      filteredOut: scan.filteredOut,
      deeperFolders: scan.deeperFolders,
    };
    const listed = new Map<string, ScannedFile>();
    for (const f of scan.files) listed.set(`${record.name}/${f.path}`, f);

    for (const entry of this.#host.filesOf(record.name)) {
      const still = listed.get(entry.name);
      if (still !== undefined && still.url === entry.url) {
        this.#host.keep(entry);
        continue;
      }
      const outcome = await this.#host.retire(entry);
      if (outcome === 'removed') result.removed.push(entry.name);
      else if (outcome === 'when-closed') result.removeWhenClosed.push(entry.name);
      else result.keptPinned.push(entry.name);
    }

    await eachLimited([...listed], PROBE_CONCURRENCY, async ([name, file]) => {
      try {
        validateName(name);
        const origin = await probeOrigin(this.#host.dispatcher, file.url, record.headers);
        const current = this.#host.get(name);
        if (current === undefined) {
          this.#host.addProbed(name, file.url, record.headers, origin, record.name);
          result.added.push(name);
        } else if (current.url !== file.url || current.folder !== record.name) {
          throw new FsError('EEXIST', `already in the mount, from ${displayUrl(current.url)}`);
        } else if (sameVersion(current.origin, origin)) {
          result.unchanged++;
        } else {
          await this.#host.adoptNewVersion(current, origin);
          result.changed.push(name);
        }
      } catch (err) {
        result.failed.push({ name, error: toFsError(err).message });
      }
    });
    for (const list of [result.added, result.changed]) list.sort();
    result.failed.sort((a, b) => a.name < b.name ? -1 : 1);
    state.lastRefreshAt = Date.now();
    state.lastError = null;
    this.#host.log.info({
      folder: record.name,
      added: result.added.length,
      changed: result.changed.length,
      removed: result.removed.length,
      removeWhenClosed: result.removeWhenClosed.length,
      failed: result.failed.length,
    }, 'folder read');
    return result;
  }

  #schedule (state: FolderState): void {
    const every = state.record.refreshEveryMs;
    if (every === null || this.#closed || !this.#folders.has(state.record.name)) return;
    state.timer = setTimeout(() => {
      state.timer = null;
      this.refresh(state.record.name).catch(err => {
        this.#host.log.warn({ folder: state.record.name, err: toFsError(err).message }, 'could not refresh the folder');
      });
    }, every);
    state.timer.unref();
  }

  #summary (s: FolderState): FolderSummary {
    const { name, url, include, exclude, depth, refreshEveryMs } = s.record;
    return {
      name,
      url: displayUrl(url),
      include,
      exclude,
      depth,
      refreshEveryMs,
      files: this.#host.filesOf(name).length,
      lastRefreshAt: s.lastRefreshAt,
      lastError: s.lastError,
    };
  }
}

/** A folder's default name: the last segment of its URL's path, decoded. */
function defaultFolderName (url: string): string {
  const segments = new URL(url).pathname.split('/').filter(s => s !== '');
  const last = segments.at(-1);
  if (last === undefined) throw new FsError('EINVAL', `${displayUrl(url)} is a site's root; give the folder a name with --name`);
  try { return decodeURIComponent(last); } catch { return last; }
}
