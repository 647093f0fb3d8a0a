import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { StorePool } from './cache/store-pool';
import { Catalogue, type FileEntry } from './catalogue/catalogue';
import { parseUrl } from './catalogue/names';
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
import { fskitMountFailure, type BackendDecision, type MacFacts } from './platform/mac-backend';
import { decideMacBackend } from './platform/mac-facts';
import { inhibitorCommand, SleepInhibitor } from './platform/sleep-inhibitor';
import { FuseMount } from './fs/mount';
import { logDir } from './log';
import { createOriginDispatcher, type NetworkOptions } from './origin/http-client';
import { describeProxies } from './origin/proxy-settings';
import { DashboardServer, startDashboard } from './ui/dashboard-server';
import { Folders } from './folders/folders';
import { RemoteFiles } from './files/remote-files';
import { ContentHasher } from './verify/content-hasher';
import { RangeCommitter } from './state/range-committer';
import { StateDb, type FileRecord } from './state/state-db';
import { BandwidthLimiter, type BandwidthLimits } from './store/bandwidth-limiter';
import { DownloadSlots, stalledYieldMs } from './store/download-slots';
import type { TempFileStore } from './store/temp-file-store';
import { storeEvents } from './files/store-events';
import { defaultQuota } from './cache/default-quota';
import { makeDir } from './make-dir';

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
  /** Whom origin connections trust and which proxy they go through. */
  network: NetworkOptions;
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
  readonly #dispatcher: Dispatcher;
  /** The proxies origin connections go through, as status shows them (credentials hidden); null: direct. */
  readonly #proxy: string | null;
  readonly #hasher = new ContentHasher();
  readonly #slots: DownloadSlots;
  /** --bwlimit and --background-bwlimit, changed at run time by fsctl limit. */
  readonly #limiter: BandwidthLimiter;
  readonly #mount: FuseMount;
  /** Keeps the FUSE threads' copy of the catalogue (their getattr and readdir answers) current. */
  readonly #metadata: MetadataPublisher;
  readonly #control: ControlServer;
  /** The control API's methods: the socket's, and the dashboard's allowed few. */
  readonly #rpc: ReturnType<typeof createRpcServer>;
  /** The page on 127.0.0.1 (agent/ui/); null with --no-ui, or when its port could not be had. */
  #dashboard: DashboardServer | null = null;
  readonly #events: EventHub;
  /** Keeps the machine awake while files download; null when turned off (--no-inhibit-sleep). */
  readonly #inhibitor: SleepInhibitor | null;
  readonly #startedAt = Date.now();
  /** Shown as the folders' mtime. */
  get startedAtMs (): number { return this.#startedAt; }
  /** Problems met at start that the user should hear of (a corrupt database moved aside). */
  readonly startupProblems: string[] = [];
  readonly #folders: Folders;
  /** Every remote file, one object each (agent/files/): what the control API and the mount act on. */
  readonly #files: RemoteFiles;
  #stopping: Promise<void> | null = null;
  /** Called once the agent has stopped on its own (shutdown asked over the socket). */
  onStopped: (() => void) | null = null;

  private constructor (resolved: ResolvedConfig, log: Logger, version: string, db: StateDb, disk: DiskFacts) {
    const { maxBytes, sparseFiles, bootId, mac, network } = disk;
    this.#dispatcher = createOriginDispatcher(network);
    this.#proxy = describeProxies(network.proxies);
    const config = resolved.config;
    this.resolvedConfig = resolved;
    this.config = config;
    this.log = log;
    this.version = version;
    this.#db = db;
    this.#slots = new DownloadSlots(config.maxConnections, stalledYieldMs(config.readTimeoutMs));
    this.#limiter = new BandwidthLimiter({ total: config.bwlimit, background: config.backgroundBwlimit });
    this.#committer = new RangeCommitter(db, log, bootId);
    const plan = mountPlan(process.platform, mountPlanInput(config, mac?.decision.backend));
    if (plan.readMaxWaitNote !== null) log.warn(`read-max-wait ${plan.readMaxWaitNote}`);
    this.#events = new EventHub(() => [...this.#pool.stores()].map(store => ({
      file: store.source.name, state: store.state, presentBytes: store.presentBytes, size: store.size, bytesPerSecond: store.bytesPerSecond,
    })));
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
        limiter: this.#limiter,
        maxDownloadsPerFile: config.maxConnectionsPerFile,
        fillMaxBytes: config.fillFilesUpTo,
        hasher: this.#hasher,
        retireFastReads: state => this.#mount.retireFastReads(state),
      },
      db,
      committer: this.#committer,
      log,
      observer: storeEvents({ events: this.#events, log, files: () => this.#files, poke: () => this.#inhibitor?.poke() }),
      sparseFiles,
    });
    this.#files = new RemoteFiles({
      catalogue: this.catalogue,
      pool: this.#pool,
      db,
      events: this.#events,
      log,
      dispatcher: this.#dispatcher,
      stopping: () => this.#stopping !== null,
      mount: config.mount,
    });
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
    this.catalogue.onChange(() => {
      this.#metadata.changed();
      this.#dashboard?.changed();
    });
    // A control call may change any file, a resting one too (pin, pause, evict): the dashboard looks at all after one.
    this.#rpc = createRpcServer(this, log, () => this.#dashboard?.changed());
    this.#control = new ControlServer(config.socket, this.#rpc, log);
    this.#folders = new Folders(this.#files.folderHost(), db);
  }

  /**
   * Loads the catalogue from the database (no network, no scan of the cache dir), claims
   * the control socket (so two agents never share a mount), mounts, and only then checks
   * origins and resumes downloads in the background.
   */
  static async start (resolved: ResolvedConfig, log: Logger, version: string, network: NetworkOptions): Promise<Agent> {
    const config = resolved.config;
    await makeDir(config.cacheDir);
    await makeDir(config.stateDir);
    const { db, problem } = StateDb.open(path.join(config.stateDir, 'fusestream.db'));
    if (problem !== null) log.error(problem);
    const maxBytes = config.cacheMaxBytes ?? await defaultQuota(db, config.cacheDir);
    const sparseFiles = await keepsFilesSparse(config.cacheDir);
    const bootId = await currentBootId(process.platform);
    const mac = process.platform === 'darwin' ? await decideMacBackend(config.macBackend, config.mount, log) : null;
    const agent = new Agent(resolved, log, version, db, { maxBytes, sparseFiles, bootId, mac, network });
    if (agent.#proxy !== null) log.info(`origin connections go through the proxy ${agent.#proxy}`);
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
    if (config.ui) await agent.#startDashboard();
    log.info(
      {
        mount: config.mount,
        socket: config.socket,
        cacheDir: config.cacheDir,
        files: records.length,
        cacheMaxBytes: maxBytes,
        dashboard: agent.#dashboard?.address ?? null,
      },
      'ready'
    );
    agent.#afterStart(records);
    return agent;
  }

  #load (records: FileRecord[]): void {
    for (const r of records) {
      // A url-command runs again before the first request: what it minted before has likely expired.
      const endpoints = this.#files.sourceFor(r.name, r.url, r.headers, r.urlCommand);
      const { id, name, url, headers, urlCommand, folder, origin, addedAt, mtimeMs } = r;
      this.#files.load({ id, name, url, headers, urlCommand, endpoints, folder, origin, addedAt, mtimeMs });
      this.#pool.addResting(r.id, r.origin.size, r.ranges, r.lastAccessAt, r.pinned, r.verified, r.paused);
    }
    this.#folders.load();
  }

  /** The dashboard: a problem (its port taken) is said and lived with; the mount works without it. */
  async #startDashboard (): Promise<void> {
    const started = await startDashboard({
      port: this.config.uiPort,
      stateDir: this.config.stateDir,
      source: this,
      call: async (method, params) => await this.#rpc.receive({ jsonrpc: '2.0', id: 1, method, params }, undefined as never),
      log: this.log,
    });
    if (started instanceof DashboardServer) this.#dashboard = started;
    else this.startupProblems.push(started);
  }

  /** fsctl limit: new caps (a field left out keeps its cap) until the agent stops; the configuration is not changed. */
  setLimits (limits: Partial<BandwidthLimits>): BandwidthLimits {
    const next = { ...this.#limiter.limits, ...limits };
    this.#limiter.set(next);
    this.log.info({ limits: next }, 'download rate caps changed');
    return next;
  }

  dashboardLink (): { url: string } {
    if (this.#dashboard === null) {
      const why = this.config.ui ? 'the dashboard could not start: fsctl status says why' : 'the dashboard is off (--no-ui)';
      throw new FsError('ENOENT', why);
    }
    return { url: this.#dashboard.loginUrl };
  }

  /** Background work after the mount is up: orphan sweep, origin re-checks, resumed downloads. */
  #afterStart (records: FileRecord[]): void {
    this.#pool.sweepOrphans(new Set(records.map(r => r.id))).then(
      n => { if (n > 0) this.log.info({ removed: n }, 'deleted temp files no catalogued file claims'); },
      err => this.log.warn({ err }, 'could not sweep the cache dir')
    );
    this.#files.afterRestart(records, this.config.resumeDownloads);
  }

  // FsBackend: what the FUSE operations call.

  async openStore (entry: FileEntry): Promise<TempFileStore> {
    if (this.#stopping !== null) throw new FsError('ESHUTDOWN', 'agent is stopping');
    const file = this.#files.of(entry);
    if (file === undefined) throw new FsError('ENOENT', `${entry.name} is no longer in the mount`);
    return await file.open();
  }

  contentEpoch (id: string): number {
    return this.#files.byId(id)?.contentEpoch ?? 0;
  }

  releaseStore (store: TempFileStore): void {
    const file = this.#files.byId(store.id);
    if (file === undefined) return this.#pool.release(store);
    // A file gone from its folder's index, open then: it leaves with its last handle.
    if (file.released(store)) {
      this.removeFile(file.name).catch(err => this.log.warn({ err, file: file.name }, 'could not remove the file'));
    }
  }

  // ControlTarget: what the control socket calls.

  addFile (params: AddFileParams): Promise<AddFileResult> { return this.#files.add(params); }
  setUrl (params: SetUrlParams): Promise<SetUrlResult> { return this.#files.setUrl(params); }
  removeFile (file: string): Promise<{ removed: string }> { return this.#files.remove(file); }
  listFiles (): FileSummary[] { return this.#files.list(); }
  /** @public The dashboard's feed (DashboardSource), each tick: the files with a store. */
  liveFiles (): FileSummary[] { return this.#files.live(); }
  getFile (file: string): FileDetails { return this.#files.details(file); }
  cancel (file: string): Promise<FileSummary> { return this.#files.cancel(file); }
  resume (file: string): Promise<FileSummary> { return this.#files.resume(file); }
  resumeAll (): Promise<{ files: number }> { return this.#files.resumeAll(); }
  pause (file: string): FileSummary { return this.#files.pause(file); }
  pauseAll (): { files: number } { return this.#files.pauseAll(); }
  prefetch (file: string): Promise<FileSummary> { return this.#files.prefetch(file); }
  setPinned (file: string, pinned: boolean): FileSummary { return this.#files.setPinned(file, pinned); }
  evict (params: EvictParams): Promise<{ freedBytes: number }> { return this.#files.evict(params); }
  verifyFile (file: string): Promise<VerifyResult> { return this.#files.verify(file); }
  listWaiters (): Promise<WaiterSummary[]> { return this.#files.waiters(); }

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
    const files = this.#files.filesOf(folder);
    for (const entry of files) await this.removeFile(entry.name);
    return { removed: folder, files: files.length };
  }

  subscribe (conn: Connection): { subscribed: true } {
    this.#events.subscribe(conn);
    return { subscribed: true };
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
      proxy: this.#proxy,
      dashboard: this.#dashboard?.address ?? null,
      limits: this.#limiter.limits,
      sleepInhibitor: this.#inhibitor === null ? 'off' : this.#inhibitor.held ? 'held' : 'idle',
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
    await this.#dashboard?.close();
    this.#folders.close();
    this.#inhibitor?.close();
    this.#metadata.close();
    this.#mount.setMetadata(null);
    for (const entry of this.catalogue.entries()) entry.endpoints.close();
    const closing = this.#pool.closeAll('agent is stopping');
    this.#limiter.close();
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
