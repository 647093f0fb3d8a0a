import type { FileState } from '../file-state';

/**
 * The control socket's contract, shared by the agent and fsctl: one JSON-RPC 2.0 message
 * per line over a Unix socket. Methods are grouped by noun.
 */
export const Methods = {
  ping: 'agent.ping',
  status: 'agent.status',
  config: 'agent.config',
  shutdown: 'agent.shutdown',
  addFile: 'files.add',
  removeFile: 'files.remove',
  listFiles: 'files.list',
  getFile: 'files.get',
  cancel: 'files.cancel',
  resume: 'files.resume',
  setUrl: 'files.setUrl',
  pin: 'files.pin',
  unpin: 'files.unpin',
  prefetch: 'files.prefetch',
  verify: 'files.verify',
  evict: 'cache.evict',
  addFolder: 'folders.add',
  refreshFolder: 'folders.refresh',
  listFolders: 'folders.list',
  removeFolder: 'folders.remove',
  listWaiters: 'waiters.list',
  subscribe: 'events.subscribe',
  dashboard: 'ui.address',
  limit: 'agent.limit',
  pause: 'files.pause',
} as const;

/** Notifications the agent sends to a subscribed connection. */
export const Notifications = {
  event: 'events.event',
} as const;

export type AgentEvent =
  | { type: 'state'; file: string; state: FileState; error: string | null; at: number }
  | { type: 'progress'; file: string; presentBytes: number; size: number; bytesPerSecond: number; at: number }
  /** A download attempt failed: the file's `attempt`th failure, the last `withoutProgress` of them in a row with no byte. */
  | { type: 'retry'; file: string; error: string; delayMs: number; attempt: number; withoutProgress: number; at: number }
  | { type: 'waiters'; file: string; count: number; at: number }
  | { type: 'added' | 'removed'; file: string; at: number }
  /** A whole file was hashed against its digest: it matched (`ok`), or its bytes were dropped. */
  | { type: 'verified'; file: string; ok: boolean; algorithm: string; expected: string; actual: string; at: number }
  /** A url-command ran: it gave a fresh URL (until `expiresAt`, when known), or failed with `error`. */
  | { type: 'url-command'; file: string; ok: boolean; error: string | null; expiresAt: number | null; at: number }
  /** The origin now serves another version: the old bytes were dropped; these are the new validators. */
  | { type: 'changed'; file: string; size: number; etag: string | null; lastModified: string | null; at: number };

/** JSON-RPC error codes; -32000 is the agent refusing or failing, with `data.errno`. */
export const RpcError = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  Refused: -32000,
} as const;

/** Longest request line the agent reads; a longer one closes the connection. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Most calls one batch may hold. */
export const MAX_BATCH_CALLS = 100;

export type { FileState };

export interface FileSummary {
  name: string;
  /** Where it comes from, without anything that grants access (`displayUrl`): the API never hands out a secret. */
  url: string;
  size: number;
  presentBytes: number;
  state: FileState;
  /** Download rate over the last seconds, bytes per second. */
  bytesPerSecond: number;
  openHandles: number;
  waiters: number;
  pinned: boolean;
  /** Paused (fsctl pause): it downloads only what programs wait for; reads are still served. */
  paused: boolean;
  lastError: string | null;
  /** While the state is `stalled`: since when nothing has arrived (ms since the epoch), and the last cause known. */
  stalled: { since: number; cause: string } | null;
  /**
   * When the URL in use stops working, as its signature or bearer token says (ms since the
   * epoch), or null when it does not say. For a file with a url-command: the last one it minted.
   */
  urlExpiresAt: number | null;
  /** Where connections get their URL: the one added (`url`) or a url-command (`command`). */
  source: 'url' | 'command';
  /** Times the url-command gave a link since the agent started (0 for a file with a URL). */
  urlRefreshes: number;
  /**
   * The check of the file's bytes against the digest the origin (or the user) states: null
   * when nobody states one; `pending` until the file is complete and hashed; `verified`;
   * `failed` after two downloads that did not match (with what the last hashed to).
   */
  verification: Verification | null;
}

export interface Verification {
  algorithm: string;
  /** The header it came from, or "user" (fsctl add --sha256). */
  source: string;
  expected: string;
  state: 'pending' | 'verified' | 'failed';
  /** What the last bad copy hashed to (while there is no good one), or the expected digest once verified. */
  actual: string | null;
}

/** files.verify: what the bytes on disk hash to now. */
export interface VerifyResult {
  file: string;
  ok: boolean;
  algorithm: string;
  expected: string;
  actual: string;
}

/** One file in detail (files.get). */
export interface FileDetails extends FileSummary {
  ranges: Array<[number, number]>;
  /** Seconds until complete at the current rate, or null when not downloading. */
  etaSeconds: number | null;
  downloadPosition: number | null;
  /** Origin connections of this file: open now, and the most ever open at once. */
  connections: { active: number; peak: number };
  origin: { etag: string | null; lastModified: string | null; acceptRanges: boolean };
  addedAt: string;
  /** Why the last download attempt failed, while it is being retried (cleared by the next byte). */
  retrying: string | null;
  /** The url-command (argv), how often it ran since the agent started, and its last failure while it lasts. */
  urlCommand: { argv: string[]; refreshes: number; error: string | null } | null;
}

export interface EvictParams {
  file?: string;
  all?: boolean;
  /** Drop a pinned file's bytes too. */
  force?: boolean;
}

/** files.add: a URL, a url-command, or both (the URL is then used until the command is needed). */
export interface AddFileParams {
  url?: string;
  /** Without a URL, a name is required. */
  name?: string;
  headers?: Record<string, string>;
  /** A command (argv, run without a shell) that prints a fresh URL, or JSON with `url` and `headers`. */
  urlCommand?: string[];
  /** The file's sha-256 (hex), checked once it is downloaded; it overrides a digest the origin states. */
  sha256?: string;
}

/** files.setUrl: a new URL (and, when given, new headers), or a new url-command, for a file already in the mount. */
export interface SetUrlParams {
  file: string;
  url?: string;
  /** Replace the file's headers; when absent, they stay as they are. */
  headers?: Record<string, string>;
  urlCommand?: string[];
}

export interface SetUrlResult {
  file: FileSummary;
  /** True when the new URL serves the same version, so the bytes on disk were kept. */
  keptBytes: boolean;
}

export interface AddFileResult {
  file: FileSummary;
  /** False when the same URL was already there under the same name. */
  added: boolean;
}

/** folders.add: a remote folder, read from its index page(s). */
export interface FolderAddParams {
  url: string;
  /** Its path in the mount; default: the last segment of the URL's path. */
  name?: string;
  headers?: Record<string, string>;
  /** Globs over paths in the folder ("*.mp4", "season 1/**"); a glob without "/" matches a file's name at any depth. */
  include?: string[];
  exclude?: string[];
  /** Subfolder levels to enter (0: the folder's own files); default: all. */
  depth?: number;
  /** Read the index again this often (ms, at least 10 s); default: only on folders.refresh. */
  refreshEveryMs?: number;
}

/** What folders.add and folders.refresh did, file by file. */
export interface FolderResult {
  folder: string;
  added: string[];
  /** The origin serves another version: the old bytes were dropped. */
  changed: string[];
  /** Gone from the index, and taken out of the mount... */
  removed: string[];
  /** ...or to be, once their last handle closes... */
  removeWhenClosed: string[];
  /** ...or kept, since they are pinned. */
  keptPinned: string[];
  unchanged: number;
  /** Files that could not be added (their HEAD failed, a name is taken or not valid), with why. */
  failed: Array<{ name: string; error: string }>;
  /** Files the include/exclude globs left out, and subfolders beyond the depth. */
  filteredOut: number;
  deeperFolders: number;
}

export interface FolderSummary {
  name: string;
  /** As `FileSummary.url`: without anything that grants access. */
  url: string;
  include: string[];
  exclude: string[];
  depth: number | null;
  refreshEveryMs: number | null;
  files: number;
  /** When it was last read since the agent started (ms since the epoch), or null. */
  lastRefreshAt: number | null;
  /** Why the last read failed, or null. */
  lastError: string | null;
}

export interface WaiterSummary {
  file: string;
  offset: number;
  length: number;
  waitedMs: number;
  deadlineInMs: number;
  /** Where the download that will serve it stands, or null when none runs. */
  downloadPosition: number | null;
  /** The reading process, when FUSE said (it does for every read), and its command name. */
  pid: number | null;
  command: string | null;
}

export interface AgentStatus {
  version: string;
  pid: number;
  uptimeSeconds: number;
  mount: string;
  mounted: boolean;
  files: number;
  bytesPresent: number;
  activeDownloads: number;
  waiters: number;
  cache: { usedBytes: number; maxBytes: number };
  /** Origin connections: open now, the most ever open at once, and the limit. */
  connections: { active: number; peak: number; max: number };
  /** The proxy origin connections go through, credentials hidden; null: direct. */
  proxy: string | null;
  /** The dashboard's address (without its secret: `ui.address` gives the link); null when it is off or could not listen. */
  dashboard: string | null;
  /** Download rate caps in bytes per second (null: none): every download together, and background ones. */
  limits: { total: number | null; background: number | null };
  /** Keeping the machine awake: `held` while downloads run, `idle` otherwise, `off` with --no-inhibit-sleep. */
  sleepInhibitor: 'held' | 'idle' | 'off';
  /** Range commits to the state database since start. */
  databaseCommits: number;
  /**
   * Reads answered through the mount since start: what the kernel's page cache did not answer;
   * `fastReads` of them the FUSE thread answered from the temp file without JavaScript.
   */
  served: { reads: number; bytes: number; fastReads: number };
  /** getattr and readdir answers the FUSE threads gave from their copy of the catalogue, without JavaScript. */
  fastMetadata: number;
  /** Problems met at start, in words (a corrupt database moved aside, say). */
  problems: string[];
  /** The folder of the agent's log files. */
  logDir: string;
}
