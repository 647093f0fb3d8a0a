import fs from 'node:fs/promises';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { Catalogue, type FileEntry } from './catalogue/catalogue';
import { nameFromUrl, parseUrl, validateName } from './catalogue/names';
import type { AgentConfig } from './config';
import { createRpcServer, type ControlTarget } from './control/methods';
import type { AddFileParams, AddFileResult, AgentStatus, FileSummary, WaiterSummary } from './control/protocol';
import { ControlServer } from './control/server';
import { FsError } from './errors';
import { createFuseOps, type FsBackend } from './fs/fuse-ops';
import { FuseMount } from './fs/mount';
import { createOriginDispatcher } from './origin/http-client';
import { probeOrigin } from './origin/probe';
import { TempFileStore, type StoreObserver } from './store/temp-file-store';

/**
 * The agent's root object and the only owner of mutable state: the catalogue, the stores,
 * the mount and the control socket. Wiring and lifecycle live here; each part's logic lives
 * in its own folder.
 */
export class Agent implements FsBackend, ControlTarget {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly version: string;
  readonly catalogue = new Catalogue();
  readonly #dispatcher: Dispatcher = createOriginDispatcher();
  /** Stores by entry id, while being created; a failed creation is forgotten so the next open retries. */
  readonly #creating = new Map<string, Promise<TempFileStore>>();
  /** Stores by entry id, once created. */
  readonly #stores = new Map<string, TempFileStore>();
  readonly #mount: FuseMount;
  readonly #control: ControlServer;
  readonly #startedAt = Date.now();
  #stopping: Promise<void> | null = null;
  /** Called once the agent has stopped on its own (shutdown asked over the socket). */
  onStopped: (() => void) | null = null;

  private constructor (config: AgentConfig, log: Logger, version: string) {
    this.config = config;
    this.log = log;
    this.version = version;
    this.#mount = new FuseMount(config.mount, createFuseOps(this), { readMaxWaitMs: config.readMaxWaitMs, log });
    this.#control = new ControlServer(config.socket, createRpcServer(this, log), log);
  }

  /** Claims the control socket (so two agents never share a mount), then mounts. */
  static async start (config: AgentConfig, log: Logger, version: string): Promise<Agent> {
    const agent = new Agent(config, log, version);
    await fs.mkdir(config.cacheDir, { recursive: true, mode: 0o700 });
    await fs.mkdir(config.stateDir, { recursive: true, mode: 0o700 });
    await agent.#control.listen();
    try {
      await agent.#mount.mount();
    } catch (err) {
      await agent.#control.close().catch(() => {});
      throw err;
    }
    log.info({ mount: config.mount, socket: config.socket, cacheDir: config.cacheDir }, 'ready');
    return agent;
  }

  // FsBackend: what the FUSE operations call.

  openStore (entry: FileEntry): Promise<TempFileStore> {
    if (this.#stopping !== null) return Promise.reject(new FsError('ESHUTDOWN', 'agent is stopping'));
    let pending = this.#creating.get(entry.id);
    if (pending === undefined) {
      const existing = this.#stores.get(entry.id);
      pending = existing !== undefined ? Promise.resolve(existing) : this.#createStore(entry);
    }
    return pending.then(store => {
      store.openHandles++;
      store.startDownload();
      return store;
    });
  }

  releaseStore (store: TempFileStore): void {
    store.openHandles--;
  }

  #createStore (entry: FileEntry): Promise<TempFileStore> {
    const file = path.join(this.config.cacheDir, `${entry.id}.part`);
    const pending = TempFileStore.create(
      { name: entry.name, url: entry.url, headers: entry.headers, origin: entry.origin },
      file,
      {
        dispatcher: this.#dispatcher,
        readTimeoutMs: this.config.readTimeoutMs,
        readMaxWaitMs: this.config.readMaxWaitMs,
        downloadStallMs: this.config.downloadStallMs,
        observer: this.#storeObserver,
      },
    ).then(store => {
      this.#stores.set(entry.id, store);
      return store;
    }, (err: unknown) => {
      this.log.error({ err, file: entry.name }, 'cannot create the temp file');
      throw err;
    }).finally(() => this.#creating.delete(entry.id));
    this.#creating.set(entry.id, pending);
    return pending;
  }

  readonly #storeObserver: StoreObserver = {
    onStateChange: (store, state, err) => {
      if (err !== null && state === 'error') this.log.warn({ file: store.source.name, err: err.message }, 'download failed');
      else this.log.info({ file: store.source.name, state }, 'file state');
    },
    onRetry: (store, err, delayMs, attempt) => {
      this.log.warn({ file: store.source.name, err: err.message, delayMs, attempt }, 'download attempt failed; retrying');
    },
  };

  // ControlTarget: what the control socket calls.

  async addFile (params: AddFileParams): Promise<AddFileResult> {
    const url = parseUrl(params.url);
    const name = params.name !== undefined ? validateName(params.name) : nameFromUrl(url);
    const existing = this.catalogue.get(name);
    if (existing !== undefined) {
      if (existing.url === url.href) return { file: this.#summary(existing), added: false };
      throw new FsError('EEXIST', `${name} is already in the mount for another URL (${existing.url})`);
    }
    this.catalogue.checkFree(name);
    const headers = params.headers ?? {};
    const origin = await probeOrigin(this.#dispatcher, url.href, headers);
    // The probe awaited the network: another add may have taken the name meanwhile.
    const raced = this.catalogue.get(name);
    if (raced !== undefined && raced.url === url.href) return { file: this.#summary(raced), added: false };
    const now = Date.now();
    const lastModified = origin.lastModified !== null ? Date.parse(origin.lastModified) : NaN;
    const entry: FileEntry = {
      id: Catalogue.entryId(name, url.href), name, url: url.href, headers, origin,
      addedAt: now, mtimeMs: Number.isNaN(lastModified) ? now : lastModified,
    };
    this.catalogue.add(entry);
    this.log.info({ file: name, url: redactUrl(url), size: origin.size, acceptRanges: origin.acceptRanges }, 'file added');
    return { file: this.#summary(entry), added: true };
  }

  listFiles (): FileSummary[] {
    return [...this.catalogue.entries()].map(e => this.#summary(e));
  }

  listWaiters (): WaiterSummary[] {
    const out: WaiterSummary[] = [];
    for (const store of this.#stores.values()) {
      for (const w of store.waiters()) out.push({ file: store.source.name, downloadPosition: store.downloadPosition, ...w });
    }
    return out;
  }

  status (): AgentStatus {
    let bytesPresent = 0;
    let activeDownloads = 0;
    let waiters = 0;
    for (const store of this.#stores.values()) {
      bytesPresent += store.presentBytes;
      if (store.downloadPosition !== null) activeDownloads++;
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
    };
  }

  requestShutdown (reason: string): void {
    setImmediate(() => {
      this.shutdown(reason).finally(() => this.onStopped?.());
    });
  }

  #summary (entry: FileEntry): FileSummary {
    const store = this.#stores.get(entry.id);
    return {
      name: entry.name,
      url: entry.url,
      size: entry.origin.size,
      presentBytes: store?.presentBytes ?? 0,
      state: store?.state ?? (entry.origin.size === 0 ? 'complete' : 'idle'),
      openHandles: store?.openHandles ?? 0,
      waiters: store?.waiterCount ?? 0,
      lastError: store?.lastError?.message ?? null,
    };
  }

  /**
   * Fails every waiting read first (so readers see EIO, not ENOTCONN), then unmounts and
   * closes the socket. Safe to call more than once.
   */
  shutdown (reason: string): Promise<void> {
    this.#stopping ??= this.#shutdown(reason);
    return this.#stopping;
  }

  async #shutdown (reason: string): Promise<void> {
    this.log.info({ reason }, 'stopping');
    const closing = [...this.#stores.values()].map(s => s.close('agent is stopping'));
    // Let the EIO answers reach the kernel before the mount goes away.
    await new Promise(resolve => setImmediate(resolve));
    try {
      await this.#mount.unmount();
    } catch (err) {
      this.log.error({ err }, 'could not unmount');
    }
    await Promise.allSettled(closing);
    await this.#control.close().catch(err => this.log.warn({ err }, 'closing the control socket failed'));
    await this.#dispatcher.close().catch(() => {});
    this.log.info('stopped');
  }
}

/** A URL fit for a log line: no credentials, no query string (signed URLs carry secrets there). */
export function redactUrl (url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?[redacted]' : ''}`;
}
