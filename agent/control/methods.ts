import { createJSONRPCErrorResponse, JSONRPCServer, type JSONRPCID } from 'json-rpc-2.0';
import type { Logger } from 'pino';
import { isFsError } from '../errors';
import type { Connection } from './server';
import { MIN_RATE, type BandwidthLimits } from '../store/bandwidth-limiter';
import {
  Methods, RpcError,
  type AddFileParams, type AddFileResult, type AgentStatus, type EvictParams, type FileDetails, type FileSummary, type WaiterSummary,
  type SetUrlParams, type SetUrlResult, type FolderAddParams, type FolderResult, type FolderSummary,
  type VerifyResult,
} from './protocol';

/** What the control methods need of the agent. */
export interface ControlTarget {
  status (): AgentStatus;
  effectiveConfig (): unknown;
  addFile (params: AddFileParams): Promise<AddFileResult>;
  removeFile (file: string): Promise<{ removed: string }>;
  listFiles (): FileSummary[];
  getFile (file: string): FileDetails;
  cancel (file: string): Promise<FileSummary>;
  resume (file: string): Promise<FileSummary>;
  resumeAll (): Promise<{ files: number }>;
  pause (file: string): FileSummary;
  pauseAll (): { files: number };
  setUrl (params: SetUrlParams): Promise<SetUrlResult>;
  verifyFile (file: string): Promise<VerifyResult>;
  addFolder (params: FolderAddParams): Promise<FolderResult>;
  refreshFolder (folder: string): Promise<FolderResult>;
  listFolders (): FolderSummary[];
  removeFolder (folder: string): Promise<{ removed: string; files: number }>;
  prefetch (file: string): Promise<FileSummary>;
  setPinned (file: string, pinned: boolean): FileSummary;
  evict (params: EvictParams): Promise<{ freedBytes: number }>;
  listWaiters (): Promise<WaiterSummary[]>;
  subscribe (conn: Connection): { subscribed: true };
  /** Starts a clean shutdown after the answer has gone out. */
  requestShutdown (reason: string): void;
  /** New download rate caps (bytes per second; null: none), each left out kept. */
  setLimits (limits: Partial<BandwidthLimits>): BandwidthLimits;
  /** The link that opens the dashboard logged in (its secret in it). */
  dashboardLink (): { url: string };
}

/** A parameter of the wrong shape: answered with -32602 and a message naming it. */
class ParamError extends Error {}

type Params = Record<string, unknown>;

function objectParams (p: unknown): Params {
  if (p === undefined || p === null) return {};
  if (typeof p !== 'object' || Array.isArray(p)) throw new ParamError('params must be an object with named fields');
  return p as Params;
}

function str (p: Params, key: string): string {
  const v = p[key];
  if (typeof v !== 'string' || v === '') throw new ParamError(`"${key}" must be a non-empty string`);
  return v;
}

function optStr (p: Params, key: string): string | undefined {
  return p[key] === undefined ? undefined : str(p, key);
}

function optBool (p: Params, key: string): boolean | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new ParamError(`"${key}" must be true or false`);
  return v;
}

/** Rejects fields a method does not take, so a typo is an error rather than ignored. */
function only (p: Params, keys: string[]): Params {
  for (const k of Object.keys(p)) {
    if (!keys.includes(k)) throw new ParamError(`unknown field "${k}" (takes: ${keys.join(', ') || 'nothing'})`);
  }
  return p;
}

function optHeaders (p: Params, key: string): Record<string, string> | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ParamError(`"${key}" must be an object of header names to strings`);
  }
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new ParamError(`header "${k}" must have a string value`);
  }
  return v as Record<string, string>;
}

function optGlobs (p: Params, key: string): string[] | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > 100 || !v.every(g => typeof g === 'string' && g !== '' && g.length <= 1000)) {
    throw new ParamError(`"${key}" must be an array of up to 100 non-empty glob strings`);
  }
  return v as string[];
}

function optCount (p: Params, key: string): number | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ParamError(`"${key}" must be a whole number, 0 or more`);
  return v;
}

/** Most words a url-command may have; more is not a command line. */
const MAX_COMMAND_WORDS = 256;

function optArgv (p: Params, key: string): string[] | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_COMMAND_WORDS || !v.every(w => typeof w === 'string')) {
    throw new ParamError(`"${key}" must be a non-empty array of up to ${MAX_COMMAND_WORDS} strings (the program, then its arguments)`);
  }
  if (v[0] === '' || v.some(w => (w as string).includes('\0'))) throw new ParamError(`"${key}" has an empty program or a NUL byte`);
  return v as string[];
}

/** Calls that change nothing; after any other, `afterChange` is told (a file, resting or not, may have changed). */
const READ_ONLY = new Set<string>([
  Methods.ping, Methods.status, Methods.config, Methods.listFiles, Methods.getFile, Methods.listWaiters, Methods.listFolders,
  Methods.subscribe, Methods.dashboard,
]);

export function createRpcServer (target: ControlTarget, log: Logger, afterChange?: () => void): JSONRPCServer<Connection> {
  const rpc = new JSONRPCServer<Connection>({ errorListener: () => {} });
  if (afterChange !== undefined) {
    rpc.applyMiddleware(async (next, request, conn) => {
      const answer = await next(request, conn);
      if (!READ_ONLY.has(request.method)) afterChange();
      return answer;
    });
  }
  rpc.mapErrorToJSONRPCErrorResponse = (id: JSONRPCID, err: unknown) => {
    if (err instanceof ParamError) return createJSONRPCErrorResponse(id, RpcError.InvalidParams, `Invalid params: ${err.message}`);
    if (isFsError(err)) return createJSONRPCErrorResponse(id, RpcError.Refused, err.message, { errno: err.errno });
    log.error({ err }, 'control method failed');
    return createJSONRPCErrorResponse(id, RpcError.Internal, `Internal error: ${(err as Error)?.message ?? String(err)}`);
  };

  const none = (raw: unknown): Params => only(objectParams(raw), []);
  const file = (raw: unknown): string => str(only(objectParams(raw), ['file']), 'file');

  const known = Object.values(Methods).join(', ');
  rpc.handleMethodNotFound = (request: { id?: JSONRPCID; method: string }) => {
    if (request.id === undefined) return Promise.resolve(null);
    const message = `Method not found: "${String(request.method)}" (methods: ${known})`;
    return Promise.resolve(createJSONRPCErrorResponse(request.id, RpcError.MethodNotFound, message));
  };

  rpc.addMethod(Methods.ping, raw => { none(raw); return 'pong'; });
  rpc.addMethod(Methods.status, raw => { none(raw); return target.status(); });
  rpc.addMethod(Methods.config, raw => { none(raw); return target.effectiveConfig(); });
  rpc.addMethod(Methods.shutdown, raw => {
    none(raw);
    target.requestShutdown('asked to stop over the control socket');
    return { stopping: true };
  });
  rpc.addMethod(Methods.addFile, raw => {
    const p = only(objectParams(raw), ['url', 'name', 'headers', 'urlCommand', 'sha256']);
    const add = {
      url: optStr(p, 'url'),
      name: optStr(p, 'name'),
      headers: optHeaders(p, 'headers'),
      urlCommand: optArgv(p, 'urlCommand'),
      sha256: optStr(p, 'sha256'),
    };
    if (add.url === undefined && add.urlCommand === undefined) throw new ParamError('give "url", "urlCommand", or both');
    if (add.url === undefined && add.name === undefined) throw new ParamError('a file added by "urlCommand" alone needs a "name"');
    return target.addFile(add);
  });
  rpc.addMethod(Methods.removeFile, raw => target.removeFile(file(raw)));
  rpc.addMethod(Methods.listFiles, raw => { none(raw); return target.listFiles(); });
  rpc.addMethod(Methods.getFile, raw => target.getFile(file(raw)));
  rpc.addMethod(Methods.cancel, raw => target.cancel(file(raw)));
  /** `{file}` or `{all: true}`. */
  const fileOrAll = (raw: unknown): string | null => {
    const p = only(objectParams(raw), ['file', 'all']);
    const all = optBool(p, 'all');
    const f = optStr(p, 'file');
    if ((all === true) === (f !== undefined)) throw new ParamError('give either "file" or "all": true');
    return f ?? null;
  };
  rpc.addMethod(Methods.resume, raw => {
    const f = fileOrAll(raw);
    return f === null ? target.resumeAll() : target.resume(f);
  });
  rpc.addMethod(Methods.pause, raw => {
    const f = fileOrAll(raw);
    return f === null ? target.pauseAll() : target.pause(f);
  });
  rpc.addMethod(Methods.setUrl, raw => {
    const p = only(objectParams(raw), ['file', 'url', 'headers', 'urlCommand']);
    const set = { file: str(p, 'file'), url: optStr(p, 'url'), headers: optHeaders(p, 'headers'), urlCommand: optArgv(p, 'urlCommand') };
    if ((set.url === undefined) === (set.urlCommand === undefined)) throw new ParamError('give either "url" or "urlCommand"');
    return target.setUrl(set);
  });
  rpc.addMethod(Methods.prefetch, raw => target.prefetch(file(raw)));
  rpc.addMethod(Methods.verify, raw => target.verifyFile(file(raw)));
  rpc.addMethod(Methods.addFolder, raw => {
    const p = only(objectParams(raw), ['url', 'name', 'headers', 'include', 'exclude', 'depth', 'refreshEveryMs']);
    return target.addFolder({
      url: str(p, 'url'),
      name: optStr(p, 'name'),
      headers: optHeaders(p, 'headers'),
      include: optGlobs(p, 'include'),
      exclude: optGlobs(p, 'exclude'),
      depth: optCount(p, 'depth'),
      refreshEveryMs: optCount(p, 'refreshEveryMs'),
    });
  });
  const folder = (raw: unknown): string => str(only(objectParams(raw), ['folder']), 'folder');
  rpc.addMethod(Methods.refreshFolder, raw => target.refreshFolder(folder(raw)));
  rpc.addMethod(Methods.listFolders, raw => { none(raw); return target.listFolders(); });
  rpc.addMethod(Methods.removeFolder, raw => target.removeFolder(folder(raw)));
  rpc.addMethod(Methods.pin, raw => target.setPinned(file(raw), true));
  rpc.addMethod(Methods.unpin, raw => target.setPinned(file(raw), false));
  rpc.addMethod(Methods.evict, raw => {
    const p = only(objectParams(raw), ['file', 'all', 'force']);
    const all = optBool(p, 'all');
    const f = optStr(p, 'file');
    const force = optBool(p, 'force');
    if ((all === true) === (f !== undefined)) throw new ParamError('give either "file" or "all": true');
    if (force === true && f === undefined) throw new ParamError('"force" goes with "file"');
    return target.evict({ file: f, all, force });
  });
  rpc.addMethod(Methods.listWaiters, async raw => { none(raw); return await target.listWaiters(); });
  rpc.addMethod(Methods.subscribe, (raw, conn) => { none(raw); return target.subscribe(conn); });
  rpc.addMethod(Methods.dashboard, raw => { none(raw); return target.dashboardLink(); });
  rpc.addMethod(Methods.limit, raw => {
    const p = only(objectParams(raw), ['total', 'background']);
    const rate = (key: string): number | null | undefined => {
      const v = p[key];
      if (v === undefined || v === null) return v;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_RATE) {
        throw new ParamError(`"${key}" must be null or bytes per second, at least ${MIN_RATE}`);
      }
      return v;
    };
    const limits: Partial<BandwidthLimits> = {};
    const total = rate('total');
    const background = rate('background');
    if (total !== undefined) limits.total = total;
    if (background !== undefined) limits.background = background;
    return target.setLimits(limits);
  });
  return rpc;
}
