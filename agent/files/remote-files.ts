import path from 'node:path';
import { Catalogue, type FileEntry } from '../catalogue/catalogue';
import { nameFromUrl, parseUrl, validateName } from '../catalogue/names';
import type {
  AddFileParams, AddFileResult, EvictParams, FileDetails, FileSummary, SetUrlParams, SetUrlResult, VerifyResult, WaiterSummary,
} from '../control/protocol';
import { FsError } from '../errors';
import type { FolderHost } from '../folders/folders';
import { UrlSource, type Endpoint, type FileSource } from '../origin/file-source';
import { CommandSource } from '../origin/url-command';
import type { FileRecord } from '../state/state-db';
import { displayUrl, type OriginInfo, type RequestHeaders } from '../origin/origin-info';
import { probeSource } from '../origin/probe';
import { processNames } from '../platform/process-names';
import { userSha256 } from '../verify/digest';
import { mtimeOf, RemoteFile, type RemoteFileDeps } from './remote-file';

export interface RemoteFilesDeps extends RemoteFileDeps {
  /** The mount point: a path inside it names a file as its name does. */
  mount: string;
}

/**
 * Every remote file in the mount, one `RemoteFile` each, and what the control API does with
 * them: add, give a new source, remove, show, cancel, resume, prefetch, pin, evict, verify.
 */
export class RemoteFiles {
  readonly #deps: RemoteFilesDeps;
  readonly #byId = new Map<string, RemoteFile>();

  constructor (deps: RemoteFilesDeps) {
    this.#deps = deps;
  }

  /** The remote file behind a catalogue entry, while that entry is in the mount. */
  of (entry: FileEntry): RemoteFile | undefined {
    const file = this.#byId.get(entry.id);
    return file?.entry !== undefined ? file : undefined;
  }

  byId (id: string): RemoteFile | undefined { return this.#byId.get(id); }

  /** A file loaded from the database at start: in the catalogue, with its object. */
  load (entry: FileEntry): RemoteFile {
    this.#deps.catalogue.add(entry);
    return this.#track(entry);
  }

  #track (entry: FileEntry): RemoteFile {
    const file = new RemoteFile(entry, this.#deps);
    this.#byId.set(entry.id, file);
    return file;
  }

  /** Puts a probed file in the catalogue and the database, or neither (throws FsError). */
  insert (entry: FileEntry): RemoteFile {
    const { catalogue, db, log, events } = this.#deps;
    catalogue.add(entry);
    try {
      const argv = entry.urlCommand === null ? null : [...entry.urlCommand];
      db.insertFile({ ...entry, urlCommand: argv, lastAccessAt: entry.addedAt, state: 'idle', lastError: null, pinned: false });
    } catch (err) {
      catalogue.remove(entry.name);
      throw new FsError('EIO', `could not save ${entry.name} in the state database: ${(err as Error).message}`);
    }
    const { name, url, urlCommand, folder, origin: { size, acceptRanges } } = entry;
    log.info({ file: name, url: displayUrl(url), urlCommand: urlCommand !== null, folder, size, acceptRanges }, 'file added');
    events.publish({ type: 'added', file: name, at: entry.addedAt });
    return this.#track(entry);
  }

  /** Where a file's connections get their URL: a fixed URL, or a url-command that mints one each time it is needed. */
  sourceFor (name: string, url: string, headers: RequestHeaders, urlCommand: readonly string[] | null): FileSource {
    const { events, log } = this.#deps;
    if (urlCommand === null) return new UrlSource(url, headers);
    return new CommandSource(urlCommand, { name, url, headers }, {
      onRun: (err, minted) => {
        const expiresAt = minted?.expiresAt ?? null;
        events.publish({ type: 'url-command', file: name, ok: err === null, error: err?.message ?? null, expiresAt, at: Date.now() });
        // Never the URL or the output: they hold credentials.
        if (err !== null) log.warn({ file: name, err: err.message }, 'url-command failed');
        else log.info({ file: name, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() }, 'url-command ran');
      },
    });
  }

  /**
   * After a restart: files with bytes of an earlier run check their origin still serves that
   * version before an open uses them, and downloads that were running go on (when `resume`).
   */
  afterRestart (records: ReadonlyArray<Pick<FileRecord, 'id' | 'name' | 'state' | 'origin'>>, resume: boolean): void {
    const { pool, log, stopping } = this.#deps;
    for (const r of records) {
      const present = pool.presentBytes(r.id);
      if (present > 0 && present < r.origin.size) this.#byId.get(r.id)?.checkAfterRestart();
    }
    if (!resume) return;
    for (const r of records) {
      if (r.state !== 'downloading' && r.state !== 'stalled') continue;
      void (async () => {
        const file = this.#byId.get(r.id);
        await file?.revalidated;
        const entry = file?.entry;
        if (entry === undefined || stopping()) return;
        (await pool.ensure(entry)).startDownload(true);
        log.info({ file: r.name }, 'resuming download');
      })().catch(err => log.warn({ err, file: r.name }, 'could not resume download'));
    }
  }

  /** A name in the mount, or a path inside the mount (as dragged from a file manager). */
  resolve (file: string): RemoteFile {
    const { mount, catalogue } = this.#deps;
    let name = file;
    if (path.isAbsolute(file)) {
      const rel = path.relative(mount, file);
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
        throw new FsError('EINVAL', `${file} is not inside the mount ${mount}`);
      }
      name = rel.split(path.sep).join('/');
    }
    const entry = catalogue.get(name);
    const found = entry === undefined ? undefined : this.of(entry);
    if (found === undefined) throw new FsError('ENOENT', `no file named ${name} in the mount`);
    return found;
  }

  async add (params: AddFileParams): Promise<AddFileResult> {
    const { catalogue, dispatcher } = this.#deps;
    const given = params.url !== undefined ? parseUrl(params.url) : null;
    const urlCommand = params.urlCommand ?? null;
    if (given === null && urlCommand === null) throw new FsError('EINVAL', 'give a URL, a url-command, or both');
    if (given === null && params.name === undefined) throw new FsError('EINVAL', 'a file added by a url-command alone needs a name');
    const name = params.name !== undefined ? validateName(params.name) : nameFromUrl(given as URL);
    // Adding the same thing again is not an error: scripts may run twice.
    const sameSource = (e: FileEntry): boolean =>
      (given === null || e.url === given.href) && JSON.stringify(e.urlCommand) === JSON.stringify(urlCommand);
    const existing = catalogue.get(name);
    if (existing !== undefined) {
      if (sameSource(existing)) return { file: this.summary(existing), added: false };
      throw new FsError('EEXIST', `${name} is already in the mount, from ${describeSource(existing)}`);
    }
    catalogue.checkFree(name);
    const userDigest = params.sha256 !== undefined ? userSha256(params.sha256) : null;
    const headers = params.headers ?? {};
    const endpoints = this.sourceFor(name, given?.href ?? '', headers, urlCommand);
    let probed: { origin: OriginInfo; endpoint: Endpoint };
    try {
      probed = await probeSource(dispatcher, endpoints);
    } catch (err) {
      endpoints.close();
      throw err;
    }
    // The user's digest is the one checked: they know what they expect.
    const origin = userDigest === null ? probed.origin : { ...probed.origin, digest: userDigest };
    // The probe awaited the network: another add may have taken the name meanwhile.
    const raced = catalogue.get(name);
    if (raced !== undefined && sameSource(raced)) {
      endpoints.close();
      return { file: this.summary(raced), added: false };
    }
    const url = given?.href ?? withoutCredentials(probed.endpoint.url);
    const entry = newEntry({ name, url, headers, urlCommand, endpoints, folder: null, origin });
    try {
      this.insert(entry);
    } catch (err) {
      endpoints.close();
      throw err;
    }
    return { file: this.summary(entry), added: true };
  }

  /**
   * A new URL (a link that expired, say) or url-command for a file. The new source is asked
   * for the file's version first: the same version keeps every byte on disk; another drops
   * them, as a changed origin does. Nothing changes if the new source does not answer.
   */
  async setUrl (params: SetUrlParams): Promise<SetUrlResult> {
    const file = this.resolve(params.file);
    const entry = file.entry!;
    const given = params.url !== undefined ? parseUrl(params.url) : null;
    const urlCommand = params.urlCommand ?? null;
    if ((given === null) === (urlCommand === null)) throw new FsError('EINVAL', 'give either a new URL or a new url-command');
    const headers = params.headers ?? entry.headers;
    const url = given?.href ?? entry.url;
    const endpoints = this.sourceFor(entry.name, url, headers, urlCommand);
    let keptBytes: boolean;
    try {
      const now = (await probeSource(this.#deps.dispatcher, endpoints)).origin;
      keptBytes = await file.setSource({ url, headers, urlCommand, endpoints, now });
    } catch (err) {
      endpoints.close();
      throw err;
    }
    return { file: this.summary(file.entry ?? entry), keptBytes };
  }

  /** Drops a file and its cached bytes; programs that have it open get EIO from now on. */
  async remove (name: string): Promise<{ removed: string }> {
    const file = this.resolve(name);
    await file.remove();
    if (this.#byId.get(file.id) === file) this.#byId.delete(file.id); // not one added again meanwhile
    return { removed: file.name };
  }

  /** What `fsctl ls` shows of an entry. */
  summary (entry: FileEntry): FileSummary {
    const file = this.#byId.get(entry.id);
    if (file === undefined) throw new FsError('ENOENT', `${entry.name} is not a tracked file`);
    return file.summary(entry);
  }

  list (): FileSummary[] {
    return [...this.#deps.catalogue.entries()].map(e => this.summary(e));
  }

  /** The files with a store (open, downloading, or kept after): the only ones whose numbers move by themselves. */
  live (): FileSummary[] {
    const out: FileSummary[] = [];
    for (const store of this.#deps.pool.stores()) {
      const entry = this.#deps.catalogue.get(store.source.name);
      if (entry !== undefined && entry.id === store.id) out.push(this.summary(entry));
    }
    return out;
  }

  details (name: string): FileDetails {
    return this.resolve(name).details();
  }

  /** Stops a file's download and fails its waiting reads at once; reads of missing bytes fail until resumed. */
  async cancel (name: string): Promise<FileSummary> {
    const file = this.resolve(name);
    (await this.#deps.pool.ensure(file.entry!)).cancel(`download of ${file.name} was cancelled`);
    this.#deps.log.info({ file: file.name }, 'download cancelled');
    return file.summary();
  }

  /** Ends a pause, clears a cancel or an error, and downloads again now. */
  async resume (name: string): Promise<FileSummary> {
    const file = this.resolve(name);
    const { pool } = this.#deps;
    if (pool.isPaused(file.id)) {
      pool.setPaused(file.id, false);
      // Nothing was asked of a file with no store (not opened since it was paused): ending the pause starts nothing.
      if (pool.get(file.id) === undefined) return file.summary();
    }
    (await pool.ensure(file.entry!)).resume();
    return file.summary();
  }

  /** fsctl pause: the file downloads only what programs wait for, until resumed; kept across restarts. */
  pause (name: string): FileSummary {
    const file = this.resolve(name);
    this.#deps.pool.setPaused(file.id, true);
    this.#deps.log.info({ file: file.name }, 'paused');
    return file.summary();
  }

  /** Pauses every file; resolves with how many were not paused before. */
  pauseAll (): { files: number } {
    let files = 0;
    for (const entry of this.#deps.catalogue.entries()) {
      if (this.#deps.pool.isPaused(entry.id)) continue;
      this.#deps.pool.setPaused(entry.id, true);
      files++;
    }
    this.#deps.log.info({ files }, 'paused every file');
    return { files };
  }

  /** Ends every pause, and resumes every cancelled or failed file with a store; how many it touched. */
  async resumeAll (): Promise<{ files: number }> {
    let files = 0;
    for (const entry of [...this.#deps.catalogue.entries()]) {
      const store = this.#deps.pool.get(entry.id);
      const failed = store !== undefined && (store.state === 'cancelled' || store.state === 'error');
      if (!this.#deps.pool.isPaused(entry.id) && !failed) continue;
      await this.resume(entry.name).catch(() => {}); // removed meanwhile
      files++;
    }
    return { files };
  }

  /** Downloads the whole file now, with no reader attached. */
  async prefetch (name: string): Promise<FileSummary> {
    const file = this.resolve(name);
    if (this.#deps.pool.isPaused(file.id)) throw new FsError('EBUSY', `${file.name} is paused; fsctl resume ${file.name} first`);
    const store = await this.#deps.pool.ensure(file.entry!);
    if (store.state === 'cancelled' || store.state === 'error') store.resume();
    store.startDownload(true);
    return file.summary();
  }

  setPinned (name: string, pinned: boolean): FileSummary {
    const file = this.resolve(name);
    this.#deps.pool.setPinned(file.id, pinned);
    return file.summary();
  }

  async evict (params: EvictParams): Promise<{ freedBytes: number }> {
    const { pool } = this.#deps;
    if (params.all === true) return { freedBytes: await pool.evictAll() };
    if (params.file === undefined) throw new FsError('EINVAL', 'name a file to evict, or ask for all');
    const file = this.resolve(params.file);
    if (pool.isPinned(file.id) && params.force !== true) {
      throw new FsError('EBUSY', `${file.name} is pinned; unpin it first, or evict it with --force`);
    }
    return { freedBytes: await pool.evictFile(file.id) };
  }

  /** fsctl verify: hashes a complete file on disk again; a mismatch drops its bytes and fetches them anew. */
  async verify (name: string): Promise<VerifyResult> {
    const file = this.resolve(name);
    const digest = file.entry!.origin.digest;
    if (digest === null) {
      throw new FsError('EINVAL', `no digest is known for ${file.name}: its origin states none; give one with fsctl add --sha256`);
    }
    const store = await this.#deps.pool.ensure(file.entry!);
    const { ok, actual } = await store.recheck();
    return { file: file.name, ok, algorithm: digest.algorithm, expected: digest.hex, actual };
  }

  /** Every read waiting for bytes, with the process that reads. */
  async waiters (): Promise<WaiterSummary[]> {
    const found: Array<Omit<WaiterSummary, 'command'>> = [];
    for (const store of this.#deps.pool.stores()) {
      for (const w of store.waiters()) found.push({ file: store.source.name, downloadPosition: store.downloadPositionFor(w.offset), ...w });
    }
    const names = await processNames(process.platform, found.flatMap(w => (w.pid === null ? [] : [w.pid])));
    return found.map(w => ({ ...w, command: w.pid === null ? null : names.get(w.pid) ?? null }));
  }

  /** The files that came from a folder (fsctl add --recursive). */
  filesOf (folder: string): FileEntry[] {
    return [...this.#deps.catalogue.entries()].filter(e => e.folder === folder);
  }

  /** What the folders (agent/folders/) do with the files: add those listed, retire those gone, adopt new versions. */
  folderHost (): FolderHost {
    const { catalogue, dispatcher, log, pool } = this.#deps;
    return {
      dispatcher,
      log,
      filesOf: folder => this.filesOf(folder),
      get: name => catalogue.get(name),
      addProbed: (name, url, headers, origin, folder) => {
        const entry = newEntry({ name, url, headers, urlCommand: null, endpoints: new UrlSource(url, headers), folder, origin });
        this.insert(entry);
        return entry;
      },
      retire: async entry => {
        const file = this.of(entry);
        if (pool.isPinned(entry.id) || file === undefined) return 'kept';
        if (!file.leaveWhenClosed()) return 'when-closed';
        await this.remove(entry.name);
        return 'removed';
      },
      keep: entry => { this.of(entry)?.keepInMount(); },
      adoptNewVersion: async (entry, now) => await this.of(entry)?.adoptNewVersion(now) ?? null,
    };
  }
}

/** How an error names where a file comes from: its URL (no query: it may hold a signature), or its command. */
function describeSource (entry: FileEntry): string {
  return entry.urlCommand === null ? `URL ${displayUrl(entry.url)}` : `the url-command ${path.basename(entry.urlCommand[0])}`;
}

/** A minted URL as the file's record keeps it: scheme, host and path, without what grants access. */
function withoutCredentials (url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return u.href;
}

/** A file entry added now: its id from its name and URL, its mtime from the origin. */
function newEntry (f: Omit<FileEntry, 'id' | 'addedAt' | 'mtimeMs'>): FileEntry {
  const now = Date.now();
  return { ...f, id: Catalogue.entryId(f.name, f.url), addedAt: now, mtimeMs: mtimeOf(f.origin, now) };
}
