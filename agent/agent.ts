import fs from 'node:fs/promises';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { StorePool } from './cache/store-pool';
import { Catalogue, type FileEntry } from './catalogue/catalogue';
import { nameFromUrl, parseUrl, validateName } from './catalogue/names';
import { describeConfig, mountPlanInput, type AgentConfig, type ConfigLine, type ResolvedConfig } from './config';
import { createRpcServer, type ControlTarget } from './control/methods';
import { EventHub } from './control/event-hub';
import type {
  AddFileParams, AddFileResult, AgentStatus, EvictParams, FileDetails, FileSummary, SetUrlParams, SetUrlResult, WaiterSummary,
  FolderAddParams, FolderResult, FolderSummary, VerifyResult,
} from './control/protocol';
import { ControlServer, type Connection } from './control/server';
import { FsError } from './errors';
import { createFuseOps, type FsBackend } from './fs/fuse-ops';
import { encodeMetadata, MetadataPublisher } from './fs/metadata-snapshot';
import { ServedCounter } from './fs/served-counter';
import { keepsFilesSparse } from './cache/sparse-check';
import { currentBootId } from './platform/boot-id';
import { mountPlan } from './platform/mount-options';
import { chooseMacBackend, fskitMountFailure, type BackendDecision, type MacFacts } from './platform/mac-backend';
import { probeMacFacts } from './platform/mac-facts';
import { processNames } from './platform/process-names';
import { inhibitorCommand, SleepInhibitor } from './platform/sleep-inhibitor';
import { FuseMount } from './fs/mount';
import { logDir } from './log';
import { createOriginDispatcher } from './origin/http-client';
import { UrlSource, type Endpoint, type FileSource } from './origin/file-source';
import { displayUrl, OriginChangedError, sameVersion, type OriginInfo, type RequestHeaders } from './origin/origin-info';
import { probeSource } from './origin/probe';
import { CommandSource } from './origin/url-command';
import { Folders, type FolderHost } from './folders/folders';
import { ContentHasher } from './verify/content-hasher';
import { userSha256 } from './verify/digest';
import { RangeCommitter } from './state/range-committer';
import { StateDb, type FileRecord } from './state/state-db';
import { DownloadSlots, stalledYieldMs } from './store/download-slots';
import type { FileState } from './file-state';
import type { StoreObserver, TempFileStore } from './store/temp-file-store';
import { makeDir } from './make-dir';

/** Default quota: this much at most... */
const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;
/** ...and at most this share of the cache disk's free space when the agent first starts. */
const DEFAULT_CACHE_FREE_SHARE = 0.5;

/** An open unanswered this long before fuse-native's own timeout fails with ETIMEDOUT, answered by us (fuse-ops). */
const OPEN_DEADLINE_MARGIN_MS = 5000;

/** What the agent learns of its disk and machine at start. */
interface DiskFacts {
  /** The cache quota. */
  maxBytes: number;
  /** Whether the cache folder keeps sparse files sparse (the quota counts full sizes if not). */
  sparseFiles: boolean;
  /** This boot's id: ranges committed unsynced are trusted only within it. */
  bootId: string | null;
  /** macOS: the backend chosen, and what the Mac said (null elsewhere). */
  mac: { decision: BackendDecision; facts: MacFacts } | null;
}

/**
 * The agent's root object and the only owner of mutable state: the catalogue, the state
 * database, the store pool, the mount and the control socket. Wiring and lifecycle live
 * here; each part's logic lives in its own folder.
 */
export class Agent implements FsBackend, ControlTarget {
  readonly config: AgentConfig;
  readonly resolvedConfig: ResolvedConfig;
  readonly log: Logger;
  readonly version: string;
  readonly catalogue = new Catalogue();
  readonly served = new ServedCounter();
  readonly #db: StateDb;
  readonly #committer: RangeCommitter;
  readonly #pool: StorePool;
  readonly #dispatcher: Dispatcher = createOriginDispatcher();
  readonly #hasher = new ContentHasher();
  readonly #slots: DownloadSlots;
  readonly #mount: FuseMount;
  /** Keeps the FUSE threads' copy of the catalogue (their getattr and readdir answers) current. */
  readonly #metadata: MetadataPublisher;
  readonly #control: ControlServer;
  readonly #events: EventHub;
  /** Keeps the machine awake while files download; null when turned off (--no-inhibit-sleep). */
  readonly #inhibitor: SleepInhibitor | null;
  readonly #startedAt = Date.now();
  /** Shown as the folders' mtime. */
  get startedAtMs (): number { return this.#startedAt; }
  /** Problems met at start that the user should hear of (a corrupt database moved aside). */
  readonly startupProblems: string[] = [];
  /** Partial files from an earlier run whose origin is being re-checked; opens wait for it. */
  readonly #revalidating = new Map<string, Promise<void>>();
  readonly #folders: Folders;
  /** What a file's last bad copy hashed to, while it has no good one. */
  readonly #badDigest = new Map<string, string>();
  /** Bumped when bytes that failed their digest are dropped: an open then drops the kernel's cached pages. */
  readonly #contentEpochs = new Map<string, number>();
  /** Files gone from their folder's index while open: removed when their last handle closes. */
  readonly #removeWhenClosed = new Set<string>();
  #stopping: Promise<void> | null = null;
  /** Called once the agent has stopped on its own (shutdown asked over the socket). */
  onStopped: (() => void) | null = null;

  private constructor (resolved: ResolvedConfig, log: Logger, version: string, db: StateDb, disk: DiskFacts) {
    const { maxBytes, sparseFiles, bootId, mac } = disk;
    const config = resolved.config;
    this.resolvedConfig = resolved;
    this.config = config;
    this.log = log;
    this.version = version;
    this.#db = db;
    this.#slots = new DownloadSlots(config.maxConnections, stalledYieldMs(config.readTimeoutMs));
    this.#committer = new RangeCommitter(db, log, bootId);
    const plan = mountPlan(process.platform, mountPlanInput(config, mac?.decision.backend));
    if (plan.readMaxWaitNote !== null) log.warn(`read-max-wait ${plan.readMaxWaitNote}`);
    this.#pool = new StorePool({
      cacheDir: config.cacheDir,
      maxBytes,
      evictOnClose: config.evictOnClose,
      store: {
        dispatcher: this.#dispatcher,
        readTimeoutMs: config.readTimeoutMs,
        readMaxWaitMs: plan.readMaxWaitMs,
        downloadStallMs: config.downloadStallMs,
        slots: this.#slots,
        maxDownloadsPerFile: config.maxConnectionsPerFile,
        fillMaxBytes: config.fillFilesUpTo,
        hasher: this.#hasher,
        retireFastReads: state => this.#mount.retireFastReads(state),
      },
      db,
      committer: this.#committer,
      log,
      observer: this.#storeObserver,
      sparseFiles,
    });
    this.#events = new EventHub(() => [...this.#pool.stores()].map(store => ({
      file: store.source.name, state: store.state, presentBytes: store.presentBytes, size: store.size, bytesPerSecond: store.bytesPerSecond,
    })));
    const transferring = (): boolean => [...this.#pool.stores()].some(s => s.state === 'downloading' || s.state === 'stalled');
    const inhibitor = new SleepInhibitor({ command: inhibitorCommand(process.platform, process.pid), log, isActive: transferring });
    this.#inhibitor = config.inhibitSleep ? inhibitor : null;
    const openDeadlineMs = plan.fuseTimeouts.default - OPEN_DEADLINE_MARGIN_MS;
    const afterFailure = mac === null || mac.decision.backend !== 'fskit'
      ? undefined
      : (error: string) => ({
          message: fskitMountFailure(mac.facts, error, mac.decision.fallback),
          retry: mac.decision.fallback === null ? null : mountPlan(process.platform, mountPlanInput(config, mac.decision.fallback)),
        });
    const ops = createFuseOps(this, { openDeadlineMs });
    this.#mount = new FuseMount(config.mount, ops, { plan, platform: process.platform, log, afterFailure });
    this.#metadata = new MetadataPublisher(s => this.#mount.setMetadata(s), () => encodeMetadata(this.catalogue, this.#startedAt));
    this.catalogue.onChange(() => this.#metadata.changed());
    this.#control = new ControlServer(config.socket, createRpcServer(this, log), log);
    this.#folders = new Folders(this.#folderHost(), db);
  }

  /**
   * Loads the catalogue from the database (no network, no scan of the cache dir), claims
   * the control socket (so two agents never share a mount), mounts, and only then checks
   * origins and resumes downloads in the background.
   */
  static async start (resolved: ResolvedConfig, log: Logger, version: string): Promise<Agent> {
    const config = resolved.config;
    await makeDir(config.cacheDir);
    await makeDir(config.stateDir);
    const { db, problem } = StateDb.open(path.join(config.stateDir, 'fusestream.db'));
    if (problem !== null) log.error(problem);
    const maxBytes = config.cacheMaxBytes ?? await defaultQuota(db, config.cacheDir);
    const sparseFiles = await keepsFilesSparse(config.cacheDir);
    const bootId = await currentBootId(process.platform);
    const mac = await macBackendFor(config, log);
    const agent = new Agent(resolved, log, version, db, { maxBytes, sparseFiles, bootId, mac });
    if (problem !== null) agent.startupProblems.push(problem);
    if (!sparseFiles) {
      const warning = `the cache folder ${config.cacheDir} does not keep sparse files sparse (HFS+ or exFAT, say): ` +
        'every file takes its full size on disk once opened, and the cache quota counts full sizes (an APFS or ext4 --cache-dir avoids it)';
      log.warn(warning);
      agent.startupProblems.push(warning);
    }
    const records = db.loadFiles(bootId);
    agent.#load(records);
    try {
      await agent.#control.listen();
      try {
        await agent.#mount.mount();
        agent.#metadata.changed(); // the files loaded before the mount
      } catch (err) {
        await agent.#control.close().catch(() => {});
        throw err;
      }
    } catch (err) {
      agent.#committer.stop();
      db.close();
      throw err;
    }
    log.info(
      { mount: config.mount, socket: config.socket, cacheDir: config.cacheDir, files: records.length, cacheMaxBytes: maxBytes },
      'ready'
    );
    agent.#afterStart(records);
    return agent;
  }

  #load (records: FileRecord[]): void {
    for (const r of records) {
      // A url-command runs again before the first request: what it minted before has likely expired.
      const endpoints = this.#endpointsFor(r.name, r.url, r.headers, r.urlCommand);
      const { id, name, url, headers, urlCommand, folder, origin, addedAt, mtimeMs } = r;
      this.catalogue.add({ id, name, url, headers, urlCommand, endpoints, folder, origin, addedAt, mtimeMs });
      this.#pool.addResting(r.id, r.origin.size, r.ranges, r.lastAccessAt, r.pinned, r.verified);
    }
    this.#folders.load();
  }

  /** Background work after the mount is up: orphan sweep, origin re-checks, resumed downloads. */
  #afterStart (records: FileRecord[]): void {
    this.#pool.sweepOrphans(new Set(records.map(r => r.id))).then(
      n => { if (n > 0) this.log.info({ removed: n }, 'deleted temp files no catalogued file claims'); },
      err => this.log.warn({ err }, 'could not sweep the cache dir')
    );
    for (const r of records) {
      const present = this.#pool.presentBytes(r.id);
      if (present === 0 || present >= r.origin.size) continue;
      // Bytes from an earlier run: make sure the origin still serves that version before use.
      const check = this.#revalidate(r.name).finally(() => this.#revalidating.delete(r.id));
      this.#revalidating.set(r.id, check);
    }
    if (!this.config.resumeDownloads) return;
    for (const r of records) {
      if (r.state !== 'downloading' && r.state !== 'stalled') continue;
      void (async () => {
        await this.#revalidating.get(r.id);
        const entry = this.catalogue.get(r.name);
        if (entry === undefined || this.#stopping !== null) return;
        (await this.#pool.ensure(entry)).startDownload(true);
        this.log.info({ file: r.name }, 'resuming download');
      })().catch(err => this.log.warn({ err, file: r.name }, 'could not resume download'));
    }
  }

  /** Asks the origin whether it still serves the version we hold; drops our bytes if not. */
  async #revalidate (name: string): Promise<void> {
    const entry = this.catalogue.get(name);
    if (entry === undefined) return;
    let now: OriginInfo;
    try {
      now = (await probeSource(this.#dispatcher, entry.endpoints)).origin;
    } catch (err) {
      // Unknown: keep the bytes; every resumed request carries If-Range, so versions cannot mix.
      this.log.warn({ file: name, err: (err as Error).message }, 'could not re-check the origin; keeping cached bytes');
      return;
    }
    if (sameVersion(entry.origin, now) || this.#stopping !== null) return; // stopping: the database may be closed
    this.log.info(
      { file: name, size: now.size, etag: now.etag },
      'the file changed at the origin; dropping cached bytes of the old version'
    );
    await this.#adoptNewVersion(entry, now);
  }

  /**
   * The origin serves another version: the mount shows it at once (catalogue), the old one's
   * bytes are dropped, and only then does the database record the new version (so it never
   * names the new version beside the old one's ranges), with a `changed` event. An open
   * meanwhile waits for the drop (StorePool.ensure) and gets the new version's store. The
   * entry as it now is, or null when it is not in the mount.
   */
  async #adoptNewVersion (entry: FileEntry, now: OriginInfo): Promise<FileEntry | null> {
    const current = this.catalogue.get(entry.name);
    if (current === undefined || current.id !== entry.id) return null;
    const updated = { ...current, origin: now, mtimeMs: mtimeOf(now, Date.now()) };
    this.catalogue.replace(updated);
    await this.#pool.drop(entry.id, 'the file changed at the origin');
    const latest = this.catalogue.get(entry.name);
    if (latest === undefined || latest.id !== entry.id) return null; // removed meanwhile: its row went with it
    this.#db.replaceOrigin(entry.id, latest.origin, latest.mtimeMs);
    const { size, etag, lastModified } = now;
    this.#events.publish({ type: 'changed', file: entry.name, size, etag, lastModified, at: Date.now() });
    return updated;
  }

  // FsBackend: what the FUSE operations call.

  async openStore (entry: FileEntry): Promise<TempFileStore> {
    if (this.#stopping !== null) throw new FsError('ESHUTDOWN', 'agent is stopping');
    await this.#revalidating.get(entry.id);
    for (let attempt = 1; ; attempt++) {
      const current = this.catalogue.get(entry.name);
      if (current === undefined || current.id !== entry.id) throw new FsError('ENOENT', `${entry.name} is no longer in the mount`);
      const store = await this.#pool.acquire(current);
      // The world after the await: a new version adopted (or the file removed) meanwhile
      // leaves this open holding the old version's store, which is being closed.
      const now = this.catalogue.get(entry.name);
      if (now?.id === entry.id && sameVersion(now.origin, store.source.origin)) return store;
      this.#pool.release(store);
      if (now?.id !== entry.id) void this.#pool.drop(entry.id, `${entry.name} was removed from the mount`);
      if (attempt === 3) throw new FsError('EIO', `${entry.name} changed at the origin while it was being opened`);
    }
  }

  contentEpoch (id: string): number {
    return this.#contentEpochs.get(id) ?? 0;
  }

  releaseStore (store: TempFileStore): void {
    this.#pool.release(store);
    // A file gone from its folder's index, open then: it leaves with its last handle.
    if (store.openHandles === 0 && this.#removeWhenClosed.delete(store.id) && this.catalogue.get(store.source.name)?.id === store.id) {
      this.removeFile(store.source.name).catch(err => this.log.warn({ err, file: store.source.name }, 'could not remove the file'));
    }
  }

  readonly #storeObserver: StoreObserver = {
    onStateChange: (store, state, err) => {
      this.#inhibitor?.poke();
      this.#events.publish({ type: 'state', file: store.source.name, state, error: err?.message ?? null, at: Date.now() });
      if (err instanceof OriginChangedError) {
        this.log.warn({ file: store.source.name, err: err.message }, 'the file changed at the origin during its download');
        void this.#revalidate(store.source.name);
      } else if (err !== null && state === 'error') {
        this.log.warn({ file: store.source.name, err: err.message }, 'download failed');
      } else {
        this.log.info({ file: store.source.name, state }, 'file state');
      }
    },
    onWaitersChanged: store => this.#events.waitersChanged(store.source.name, store),
    onVerified: (store, ok, actual) => {
      const digest = store.source.origin.digest!;
      const file = store.source.name;
      this.#events.publish({ type: 'verified', file, ok, algorithm: digest.algorithm, expected: digest.hex, actual, at: Date.now() });
      if (ok) {
        this.#badDigest.delete(store.id);
        this.log.info({ file, algorithm: digest.algorithm }, 'verified');
        return;
      }
      this.#badDigest.set(store.id, actual);
      // Pages the kernel cached of this copy must not reach a new open.
      this.#contentEpochs.set(store.id, (this.#contentEpochs.get(store.id) ?? 0) + 1);
      const said = { algorithm: digest.algorithm, expected: digest.hex, source: digest.source };
      this.log.warn({ file, ...said, actual }, 'downloaded bytes do not match the digest');
    },
    onRetry: (store, err, delayMs, attempt, withoutProgress) => {
      const file = store.source.name;
      this.#events.publish({ type: 'retry', file, error: err.message, delayMs, attempt, withoutProgress, at: Date.now() });
      this.log.warn({ file: store.source.name, err: err.message, delayMs, attempt, withoutProgress }, 'download attempt failed; retrying');
    },
  };

  // ControlTarget: what the control socket calls.

  async addFile (params: AddFileParams): Promise<AddFileResult> {
    const given = params.url !== undefined ? parseUrl(params.url) : null;
    const urlCommand = params.urlCommand ?? null;
    if (given === null && urlCommand === null) throw new FsError('EINVAL', 'give a URL, a url-command, or both');
    if (given === null && params.name === undefined) throw new FsError('EINVAL', 'a file added by a url-command alone needs a name');
    const name = params.name !== undefined ? validateName(params.name) : nameFromUrl(given as URL);
    // Adding the same thing again is not an error: scripts may run twice.
    const sameSource = (e: FileEntry): boolean =>
      (given === null || e.url === given.href) && JSON.stringify(e.urlCommand) === JSON.stringify(urlCommand);
    const existing = this.catalogue.get(name);
    if (existing !== undefined) {
      if (sameSource(existing)) return { file: this.#summary(existing), added: false };
      throw new FsError('EEXIST', `${name} is already in the mount, from ${describeSource(existing)}`);
    }
    this.catalogue.checkFree(name);
    const userDigest = params.sha256 !== undefined ? userSha256(params.sha256) : null;
    const headers = params.headers ?? {};
    const endpoints = this.#endpointsFor(name, given?.href ?? '', headers, urlCommand);
    let probed: { origin: OriginInfo; endpoint: Endpoint };
    try {
      probed = await probeSource(this.#dispatcher, endpoints);
    } catch (err) {
      endpoints.close();
      throw err;
    }
    // The user's digest is the one checked: they know what they expect.
    const origin = userDigest === null ? probed.origin : { ...probed.origin, digest: userDigest };
    // The probe awaited the network: another add may have taken the name meanwhile.
    const raced = this.catalogue.get(name);
    if (raced !== undefined && sameSource(raced)) {
      endpoints.close();
      return { file: this.#summary(raced), added: false };
    }
    const url = given?.href ?? withoutCredentials(probed.endpoint.url);
    const entry = newEntry({ name, url, headers, urlCommand, endpoints, folder: null, origin });
    try {
      this.#insert(entry);
    } catch (err) {
      endpoints.close();
      throw err;
    }
    return { file: this.#summary(entry), added: true };
  }

  /** Puts a probed file in the catalogue and the database, or neither (throws FsError). */
  #insert (entry: FileEntry): void {
    this.catalogue.add(entry);
    try {
      const argv = entry.urlCommand === null ? null : [...entry.urlCommand];
      this.#db.insertFile({ ...entry, urlCommand: argv, lastAccessAt: entry.addedAt, state: 'idle', lastError: null, pinned: false });
    } catch (err) {
      this.catalogue.remove(entry.name);
      throw new FsError('EIO', `could not save ${entry.name} in the state database: ${(err as Error).message}`);
    }
    const { name, url, urlCommand, folder, origin: { size, acceptRanges } } = entry;
    this.log.info({ file: name, url: displayUrl(url), urlCommand: urlCommand !== null, folder, size, acceptRanges }, 'file added');
    this.#events.publish({ type: 'added', file: name, at: entry.addedAt });
  }

  /** What the folders (agent/folders/) need of the catalogue. */
  #folderHost (): FolderHost {
    return {
      dispatcher: this.#dispatcher,
      log: this.log,
      filesOf: folder => this.#filesOf(folder),
      get: name => this.catalogue.get(name),
      addProbed: (name, url, headers, origin, folder) => {
        const entry = newEntry({ name, url, headers, urlCommand: null, endpoints: new UrlSource(url, headers), folder, origin });
        this.#insert(entry);
        return entry;
      },
      retire: async entry => {
        if (this.#pool.isPinned(entry.id)) return 'kept';
        if ((this.#pool.get(entry.id)?.openHandles ?? 0) > 0) {
          this.#removeWhenClosed.add(entry.id);
          return 'when-closed';
        }
        await this.removeFile(entry.name);
        return 'removed';
      },
      keep: entry => { this.#removeWhenClosed.delete(entry.id); },
      adoptNewVersion: (entry, now) => this.#adoptNewVersion(entry, now),
    };
  }

  /** The files that came from a folder (fsctl add --recursive). */
  #filesOf (folder: string): FileEntry[] {
    return [...this.catalogue.entries()].filter(e => e.folder === folder);
  }

  /** Where a file's connections get their URL: a fixed URL, or a url-command that mints one each time it is needed. */
  #endpointsFor (name: string, url: string, headers: RequestHeaders, urlCommand: readonly string[] | null): FileSource {
    if (urlCommand === null) return new UrlSource(url, headers);
    return new CommandSource(urlCommand, { name, url, headers }, {
      onRun: (err, minted) => {
        const expiresAt = minted?.expiresAt ?? null;
        this.#events.publish({ type: 'url-command', file: name, ok: err === null, error: err?.message ?? null, expiresAt, at: Date.now() });
        // Never the URL or the output: they hold credentials.
        if (err !== null) this.log.warn({ file: name, err: err.message }, 'url-command failed');
        else this.log.info({ file: name, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() }, 'url-command ran');
      },
    });
  }

  /** A name in the mount, or a path inside the mount (as dragged from a file manager). */
  #resolve (file: string): FileEntry {
    let name = file;
    if (path.isAbsolute(file)) {
      const rel = path.relative(this.config.mount, file);
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
        throw new FsError('EINVAL', `${file} is not inside the mount ${this.config.mount}`);
      }
      name = rel.split(path.sep).join('/');
    }
    const entry = this.catalogue.get(name);
    if (entry === undefined) throw new FsError('ENOENT', `no file named ${name} in the mount`);
    return entry;
  }

  /** Drops a file and its cached bytes; programs that have it open get EIO from now on. */
  async removeFile (file: string): Promise<{ removed: string }> {
    const entry = this.#resolve(file);
    this.catalogue.remove(entry.name);
    entry.endpoints.close();
    await this.#pool.drop(entry.id, `${entry.name} was removed from the mount`);
    this.#db.deleteFile(entry.id);
    this.log.info({ file: entry.name }, 'file removed');
    this.#events.publish({ type: 'removed', file: entry.name, at: Date.now() });
    return { removed: entry.name };
  }

  getFile (file: string): FileDetails {
    const entry = this.#resolve(file);
    const summary = this.#summary(entry);
    const source = entry.endpoints.describe();
    const store = this.#pool.get(entry.id);
    const rate = summary.bytesPerSecond;
    const downloading = summary.state === 'downloading' || summary.state === 'stalled';
    return {
      ...summary,
      ranges: this.#pool.ranges(entry.id),
      etaSeconds: downloading && rate > 0 ? Math.round((entry.origin.size - summary.presentBytes) / rate) : null,
      downloadPosition: store?.downloadPositionFor(store.firstMissing(0)) ?? null,
      connections: { active: store?.activeDownloads ?? 0, peak: store?.peakDownloads ?? 0 },
      origin: { etag: entry.origin.etag, lastModified: entry.origin.lastModified, acceptRanges: entry.origin.acceptRanges },
      addedAt: new Date(entry.addedAt).toISOString(),
      retrying: store?.retrying?.message ?? null,
      urlCommand: entry.urlCommand === null ? null : { argv: [...entry.urlCommand], refreshes: source.refreshes, error: source.error },
    };
  }

  /** Stops a file's download and fails its waiting reads at once; reads of missing bytes fail until resumed. */
  async cancel (file: string): Promise<FileSummary> {
    const entry = this.#resolve(file);
    (await this.#pool.ensure(entry)).cancel(`download of ${entry.name} was cancelled`);
    this.log.info({ file: entry.name }, 'download cancelled');
    return this.#summary(entry);
  }

  /** Clears a cancel or an error and downloads again now. */
  async resume (file: string): Promise<FileSummary> {
    const entry = this.#resolve(file);
    (await this.#pool.ensure(entry)).resume();
    return this.#summary(entry);
  }

  /**
   * A new URL (a link that expired, say) or url-command for a file. The new source is asked
   * for the file's version first: the same version keeps every byte on disk; another drops
   * them, as a changed origin does. Nothing changes if the new source does not answer.
   */
  async setUrl (params: SetUrlParams): Promise<SetUrlResult> {
    const entry = this.#resolve(params.file);
    const given = params.url !== undefined ? parseUrl(params.url) : null;
    const urlCommand = params.urlCommand ?? null;
    if ((given === null) === (urlCommand === null)) throw new FsError('EINVAL', 'give either a new URL or a new url-command');
    const headers = params.headers ?? entry.headers;
    const url = given?.href ?? entry.url;
    const cancelled = this.#pool.get(entry.id)?.state === 'cancelled';
    const endpoints = this.#endpointsFor(entry.name, url, headers, urlCommand);
    let now: OriginInfo;
    try {
      now = (await probeSource(this.#dispatcher, endpoints)).origin;
    } catch (err) {
      endpoints.close();
      throw err;
    }
    const keptBytes = sameVersion(entry.origin, now);
    const current = keptBytes ? this.catalogue.get(entry.name) : await this.#adoptNewVersion(entry, now);
    if (current == null || current.id !== entry.id) {
      endpoints.close();
      throw new FsError('ENOENT', `${entry.name} is no longer in the mount`);
    }
    this.catalogue.replace({ ...current, url, headers, urlCommand, endpoints });
    this.#db.replaceSource(entry.id, url, headers, urlCommand);
    current.endpoints.close();
    this.#pool.get(entry.id)?.setEndpoints(endpoints);
    // One rule whatever the version: a new source does not undo a cancel (fsctl resume does).
    // Another version's bytes went with the old store, and its cancel with them: cancel the new one.
    const latest = this.catalogue.get(entry.name);
    if (cancelled && !keptBytes && latest?.id === entry.id) {
      (await this.#pool.ensure(latest)).cancel(`download of ${entry.name} was cancelled`);
    }
    this.log.info({ file: entry.name, url: displayUrl(url), urlCommand: urlCommand !== null, keptBytes }, 'new source');
    return { file: this.#summary(this.catalogue.get(entry.name) ?? entry), keptBytes };
  }

  addFolder (params: FolderAddParams): Promise<FolderResult> {
    parseUrl(params.url);
    return this.#folders.add(params);
  }

  refreshFolder (folder: string): Promise<FolderResult> {
    return this.#folders.refresh(folder);
  }

  listFolders (): FolderSummary[] {
    return this.#folders.list();
  }

  /** Forgets a folder and removes its files (programs reading them get EIO from now on). */
  async removeFolder (folder: string): Promise<{ removed: string; files: number }> {
    this.#folders.forget(folder);
    const files = this.#filesOf(folder);
    for (const entry of files) await this.removeFile(entry.name);
    return { removed: folder, files: files.length };
  }

  /** Downloads the whole file now, with no reader attached. */
  async prefetch (file: string): Promise<FileSummary> {
    const entry = this.#resolve(file);
    const store = await this.#pool.ensure(entry);
    if (store.state === 'cancelled' || store.state === 'error') store.resume();
    store.startDownload(true);
    return this.#summary(entry);
  }

  setPinned (file: string, pinned: boolean): FileSummary {
    const entry = this.#resolve(file);
    this.#pool.setPinned(entry.id, pinned);
    return this.#summary(entry);
  }

  async evict (params: EvictParams): Promise<{ freedBytes: number }> {
    if (params.all === true) return { freedBytes: await this.#pool.evictAll() };
    if (params.file === undefined) throw new FsError('EINVAL', 'name a file to evict, or ask for all');
    const entry = this.#resolve(params.file);
    if (this.#pool.isPinned(entry.id) && params.force !== true) {
      throw new FsError('EBUSY', `${entry.name} is pinned; unpin it first, or evict it with --force`);
    }
    return { freedBytes: await this.#pool.evictFile(entry.id) };
  }

  subscribe (conn: Connection): { subscribed: true } {
    this.#events.subscribe(conn);
    return { subscribed: true };
  }

  listFiles (): FileSummary[] {
    return [...this.catalogue.entries()].map(e => this.#summary(e));
  }

  async listWaiters (): Promise<WaiterSummary[]> {
    const found: Array<Omit<WaiterSummary, 'command'>> = [];
    for (const store of this.#pool.stores()) {
      for (const w of store.waiters()) found.push({ file: store.source.name, downloadPosition: store.downloadPositionFor(w.offset), ...w });
    }
    const names = await processNames(process.platform, found.flatMap(w => (w.pid === null ? [] : [w.pid])));
    return found.map(w => ({ ...w, command: w.pid === null ? null : names.get(w.pid) ?? null }));
  }

  status (): AgentStatus {
    let bytesPresent = 0;
    let activeDownloads = 0;
    let waiters = 0;
    for (const e of this.catalogue.entries()) bytesPresent += this.#pool.presentBytes(e.id);
    for (const store of this.#pool.stores()) {
      activeDownloads += store.activeDownloads;
      waiters += store.waiterCount;
    }
    return {
      version: this.version,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      mount: this.config.mount,
      mounted: this.#mount.mounted,
      files: this.catalogue.size,
      bytesPresent,
      activeDownloads,
      waiters,
      cache: { usedBytes: this.#pool.quota.usedBytes, maxBytes: this.#pool.quota.maxBytes },
      connections: { active: this.#slots.active, peak: this.#slots.peak, max: this.#slots.max },
      databaseCommits: this.#committer.commits,
      served: this.served.total,
      fastMetadata: this.#mount.metadataAnswers,
      problems: this.startupProblems,
      logDir: logDir(this.config.stateDir),
    };
  }

  effectiveConfig (): { configFile: string | null; options: ConfigLine[] } {
    const options = describeConfig(this.resolvedConfig, process.platform, this.#pool.quota.maxBytes);
    return { configFile: this.resolvedConfig.configFile, options };
  }

  requestShutdown (reason: string): void {
    setImmediate(() => {
      this.shutdown(reason).finally(() => this.onStopped?.());
    });
  }

  #summary (entry: FileEntry): FileSummary {
    const store = this.#pool.get(entry.id);
    const present = this.#pool.presentBytes(entry.id);
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
      pinned: this.#pool.isPinned(entry.id),
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

  #verification (entry: FileEntry, state: FileState | null): FileSummary['verification'] {
    const digest = entry.origin.digest;
    if (digest === null) return null;
    const { algorithm, source, hex: expected } = digest;
    if (this.#pool.isVerified(entry.id)) return { algorithm, source, expected, state: 'verified', actual: expected };
    const bad = this.#badDigest.get(entry.id) ?? null;
    return { algorithm, source, expected, state: state === 'error' && bad !== null ? 'failed' : 'pending', actual: bad };
  }

  /** fsctl verify: hashes a complete file on disk again; a mismatch drops its bytes and fetches them anew. */
  async verifyFile (file: string): Promise<VerifyResult> {
    const entry = this.#resolve(file);
    const digest = entry.origin.digest;
    if (digest === null) {
      throw new FsError('EINVAL', `no digest is known for ${entry.name}: its origin states none; give one with fsctl add --sha256`);
    }
    const store = await this.#pool.ensure(entry);
    const { ok, actual } = await store.recheck();
    return { file: entry.name, ok, algorithm: digest.algorithm, expected: digest.hex, actual };
  }

  /**
   * Fails every waiting read first (so readers see EIO, not ENOTCONN), then unmounts,
   * commits what is on disk and closes the socket. Safe to call more than once.
   */
  shutdown (reason: string): Promise<void> {
    this.#stopping ??= this.#shutdown(reason);
    return this.#stopping;
  }

  async #shutdown (reason: string): Promise<void> {
    this.log.info({ reason }, 'stopping');
    this.#events.close();
    this.#folders.close();
    this.#inhibitor?.close();
    this.#metadata.close();
    this.#mount.setMetadata(null);
    for (const entry of this.catalogue.entries()) entry.endpoints.close();
    const closing = this.#pool.closeAll('agent is stopping');
    // Let the EIO answers reach the kernel before the mount goes away.
    await new Promise(resolve => setImmediate(resolve));
    try {
      await this.#mount.unmount();
    } catch (err) {
      this.log.error({ err }, 'could not unmount');
    }
    await closing;
    // The socket before the database: a control request must never find it closed.
    await this.#control.close().catch(err => this.log.warn({ err }, 'closing the control socket failed'));
    this.#committer.stop();
    this.#db.close();
    await this.#dispatcher.close().catch(() => {});
    await this.#hasher.close();
    this.log.info('stopped');
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

/** The mtime a file shows: the origin's Last-Modified, or `fallback`. */
function mtimeOf (origin: OriginInfo, fallback: number): number {
  const t = origin.lastModified !== null ? Date.parse(origin.lastModified) : NaN;
  return Number.isNaN(t) ? fallback : t;
}

/** The quota chosen at first start, kept so it does not drift as the disk fills. */
async function defaultQuota (db: StateDb, cacheDir: string): Promise<number> {
  const saved = db.getSetting('default_cache_max_bytes');
  if (saved !== null) return Number(saved);
  const st = await fs.statfs(cacheDir);
  const quota = Math.floor(Math.min(DEFAULT_CACHE_MAX_BYTES, st.bavail * st.bsize * DEFAULT_CACHE_FREE_SHARE));
  db.setSetting('default_cache_max_bytes', String(quota));
  return quota;
}

/** macOS: which backend to mount with, from what the Mac says (logged); null on other platforms. */
async function macBackendFor (config: AgentConfig, log: Logger): Promise<{ decision: BackendDecision; facts: MacFacts } | null> {
  if (process.platform !== 'darwin') return null;
  const facts = await probeMacFacts();
  const decision = chooseMacBackend(config.macBackend, facts, config.mount);
  log.info({ backend: decision.backend, fallback: decision.fallback, facts }, `mounting with ${decision.why}`);
  return { decision, facts };
}
