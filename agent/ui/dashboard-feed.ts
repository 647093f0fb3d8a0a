import type { ServerResponse } from 'node:http';
import type { AgentStatus, FileDetails, FileSummary, WaiterSummary } from '../control/protocol';

/** How often the feed looks at the files whose numbers move (those with a store) while a page is open. */
const TICK_MS = 500;
/**
 * How often it looks at every file, besides when told something changed: 10,000 summaries
 * take ~40 ms here, too much for every tick; a resting file changes only by a control call
 * or the catalogue, which tell the feed.
 */
const SCAN_MS = 5000;

/** What the dashboard shows, asked of the agent (the same answers the control API gives). */
export interface DashboardSource {
  status (): AgentStatus;
  listFiles (): FileSummary[];
  /** The files with a store: the only ones that change without a control call or a catalogue change. */
  liveFiles (): FileSummary[];
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

/** What changes the agent's line on the page: all of its status but the uptime, which moves every second. */
function agentKey (agent: AgentStatus): string {
  return JSON.stringify({ ...agent, uptimeSeconds: 0 });
}

/** What changes the waiters' marks on the page; their time waited in whole seconds, so a tooltip is never far behind. */
function waitersKey (waiters: WaiterSummary[]): string {
  return JSON.stringify(waiters.map(w => [w.file, w.offset, w.length, w.pid, w.downloadPosition, Math.floor(w.waitedMs / 1000)]));
}

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
  /** Monotonic time of the last look at every file; -Infinity: the next tick looks at all. */
  #scannedAt = -Infinity;

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

  /** Something may have changed any file: the next tick looks at all of them. */
  changed (): void { this.#scannedAt = -Infinity; }

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
    this.#scannedAt = -Infinity;
  }

  async #tick (): Promise<void> {
    if (this.#ticking || this.#subscribers.size === 0) return;
    this.#ticking = true;
    try {
      const waiters = await this.#source.listWaiters();
      // Everything below is one synchronous turn: a consistent picture.
      const agent = this.#source.status();
      const subs = [...this.#subscribers];
      const scan = subs.some(s => s.needsFull) || performance.now() - this.#scannedAt >= SCAN_MS;
      if (scan) this.#scannedAt = performance.now();
      const files = scan ? this.#source.listFiles() : this.#source.liveFiles();
      // What changed is worked out only for pages that hold a picture to change.
      const delta = subs.some(s => !s.needsFull) ? this.#delta(agent, files, waiters, scan) : null;
      let full: DashboardUpdate | null = null;
      for (const sub of subs) {
        if (sub.needsFull) {
          if (sub.busy) continue;
          full ??= this.#full(agent, files, waiters);
          this.#send(sub, full);
          sub.needsFull = false;
        } else if (delta !== null) {
          // A page still reading an earlier message misses this one: it gets a whole picture once it has caught up.
          if (sub.busy) sub.needsFull = true;
          else this.#send(sub, delta);
        }
      }
    } finally {
      this.#ticking = false;
    }
  }

  /** The whole picture (and remembers it as sent). */
  #full (agent: AgentStatus, files: FileSummary[], waiters: WaiterSummary[]): DashboardUpdate {
    this.#agentSent = agentKey(agent);
    this.#waitersSent = waitersKey(waiters);
    return { full: true, agent, waiters, files: files.map(f => this.#withRanges(f)) };
  }

  /** What changed since the last tick (and remembers it as sent), or null when nothing did. */
  #delta (agent: AgentStatus, files: FileSummary[], waiters: WaiterSummary[], all: boolean): DashboardUpdate | null {
    const update: DashboardUpdate = { full: false };
    const aKey = agentKey(agent);
    if (aKey !== this.#agentSent) { update.agent = agent; this.#agentSent = aKey; }
    const wKey = waitersKey(waiters);
    if (wKey !== this.#waitersSent) { update.waiters = waiters; this.#waitersSent = wKey; }
    const seen = new Set<string>();
    const changed: DashboardFile[] = [];
    for (const f of files) {
      seen.add(f.name);
      if (this.#sent.get(f.name) === fingerprint(f)) continue;
      changed.push(this.#withRanges(f)); // remembers it as sent
    }
    // Only a look at every file can tell which are gone.
    const removed = all ? [...this.#sent.keys()].filter(name => !seen.has(name)) : [];
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
