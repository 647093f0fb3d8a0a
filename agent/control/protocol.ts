/**
 * The control socket's contract, shared by the agent and fsctl: one JSON-RPC 2.0 message
 * per line over a Unix socket. Methods are grouped by noun.
 */
export const Methods = {
  ping: 'agent.ping',
  status: 'agent.status',
  shutdown: 'agent.shutdown',
  addFile: 'files.add',
  listFiles: 'files.list',
  listWaiters: 'waiters.list',
} as const;

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

export type FileStateName = 'idle' | 'downloading' | 'stalled' | 'complete' | 'cancelled' | 'error';

export interface FileSummary {
  name: string;
  url: string;
  size: number;
  presentBytes: number;
  state: FileStateName;
  openHandles: number;
  waiters: number;
  lastError: string | null;
}

export interface AddFileParams {
  url: string;
  name?: string;
  headers?: Record<string, string>;
}

export interface AddFileResult {
  file: FileSummary;
  /** False when the same URL was already there under the same name. */
  added: boolean;
}

export interface WaiterSummary {
  file: string;
  offset: number;
  length: number;
  waitedMs: number;
  deadlineInMs: number;
  /** Where the download that will serve it stands, or null when none runs. */
  downloadPosition: number | null;
  pid: number | null;
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
  /** Range commits to the state database since start. */
  databaseCommits: number;
  /** Problems met at start, in words (a corrupt database moved aside, say). */
  problems: string[];
}
