import type { ServerResponse } from 'node:http';
import type { AgentStatus, FileDetails, FileSummary, WaiterSummary } from '../control/protocol';

/** How often the feed looks for changes while a page is open: a live view, at no cost when none is. */
const TICK_MS = 500;

/** What the dashboard shows, asked of the agent (the same answers the control API gives). */
export interface DashboardSource {
  status (): AgentStatus;
  listFiles (): FileSummary[];
  getFile (name: string): FileDetails;
  listWaiters (): Promise<WaiterSummary[]>;
}

/** One file as the page draws it: its summary, the ranges on disk, and where its download stands. */
export type DashboardFile = FileSummary & Pick<FileDetails, 'ranges' | 'downloadPosition' | 'etaSeconds'>;

/**
 * One message of the feed. `full` replaces everything the page holds; otherwise `files` are
 * new or changed files, `removed` are gone, and `agent` and `waiters`, when present, replace
 * the page's.
 */
export interface DashboardUpdate {
  full: boolean;
  agent?: AgentStatus;
  files?: DashboardFile[];
  removed?: string[];
  waiters?: WaiterSummary[];
}

/** What changes a file's line on the page; rate included, so a moving download is redrawn. */
function fingerprint (f: FileSummary): string {
  return `${f.state}|${f.presentBytes}|${f.size}|${f.bytesPerSecond}|${f.openHandles}|${f.waiters}|${f.pinned}|` +
    `${f.lastError ?? ''}|${f.verification?.state ?? ''}|${f.stalled?.since ?? ''}`;
}

interface Subscriber { res: ServerResponse; needsFull: boolean; busy: boolean }

/**
 * The page's live view, pushed as server-sent events: a full picture when a page connects
 * (or after it fell behind), then, twice a second while anything changed, only what did.
 * Nothing runs while no page is open. A page that does not read fast enough is skipped, not
 * buffered for, and gets a full picture once it has caught up.
 */
export class DashboardFeed {
  readonly #source: DashboardSource;
  readonly #subscribers = new Set<Subscriber>();
  /** Per file, what the pages were last sent. */
  readonly #sent = new Map<string, string>();
  #agentSent = '';
  #waitersSent = '';
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;

  constructor (source: DashboardSource) {
    this.#source = source;
  }

  /** Starts an event stream on `res`; it ends when the page goes away. */
  subscribe (res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    const sub: Subscriber = { res, needsFull: true, busy: false };
    this.#subscribers.add(sub);
    res.on('close', () => {
      this.#subscribers.delete(sub);
      if (this.#subscribers.size === 0) this.#stop();
    });
    res.on('drain', () => { sub.busy = false; });
    if (this.#timer === null) this.#timer = setInterval(() => { void this.#tick(); }, TICK_MS);
    void this.#tick();
  }

  close (): void {
    this.#stop();
    for (const s of this.#subscribers) s.res.end();
    this.#subscribers.clear();
  }

  #stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#sent.clear();
    this.#agentSent = '';
    this.#waitersSent = '';
  }

  async #tick (): Promise<void> {
    if (this.#ticking || this.#subscribers.size === 0) return;
    this.#ticking = true;
    try {
      const waiters = await this.#source.listWaiters();
      // Everything below is one synchronous turn: a consistent picture.
      const agent = this.#source.status();
      const files = this.#source.listFiles();
      const delta = this.#delta(agent, files, waiters);
      let full: DashboardUpdate | null = null;
      for (const sub of this.#subscribers) {
        if (sub.busy) { sub.needsFull = true; continue; }
        if (sub.needsFull) {
          full ??= { full: true, agent, waiters, files: files.map(f => this.#withRanges(f)) };
          this.#send(sub, full);
          sub.needsFull = false;
        } else if (delta !== null) {
          this.#send(sub, delta);
        }
      }
    } finally {
      this.#ticking = false;
    }
  }

  /** What changed since the last tick (and remembers it as sent), or null when nothing did. */
  #delta (agent: AgentStatus, files: FileSummary[], waiters: WaiterSummary[]): DashboardUpdate | null {
    const update: DashboardUpdate = { full: false };
    const agentKey = JSON.stringify({ ...agent, uptimeSeconds: 0 });
    if (agentKey !== this.#agentSent) { update.agent = agent; this.#agentSent = agentKey; }
    const waitersKey = JSON.stringify(waiters.map(w => [w.file, w.offset, w.length, w.pid, w.downloadPosition]));
    if (waitersKey !== this.#waitersSent) { update.waiters = waiters; this.#waitersSent = waitersKey; }
    const seen = new Set<string>();
    const changed: DashboardFile[] = [];
    for (const f of files) {
      seen.add(f.name);
      const key = fingerprint(f);
      if (this.#sent.get(f.name) === key) continue;
      this.#sent.set(f.name, key);
      changed.push(this.#withRanges(f));
    }
    const removed = [...this.#sent.keys()].filter(name => !seen.has(name));
    for (const name of removed) this.#sent.delete(name);
    if (changed.length > 0) update.files = changed;
    if (removed.length > 0) update.removed = removed;
    return Object.keys(update).length > 1 ? update : null;
  }

  #withRanges (f: FileSummary): DashboardFile {
    this.#sent.set(f.name, fingerprint(f));
    try {
      const d = this.#source.getFile(f.name);
      return { ...f, ranges: d.ranges, downloadPosition: d.downloadPosition, etaSeconds: d.etaSeconds };
    } catch {
      return { ...f, ranges: [], downloadPosition: null, etaSeconds: null }; // removed in between
    }
  }

  #send (sub: Subscriber, update: DashboardUpdate): void {
    if (!sub.res.write(`data: ${JSON.stringify(update)}\n\n`)) sub.busy = true;
  }
}
