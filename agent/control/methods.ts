import { createJSONRPCErrorResponse, JSONRPCServer, type JSONRPCID } from 'json-rpc-2.0';
import type { Logger } from 'pino';
import { isFsError } from '../errors';
import type { Connection } from './server';
import {
  Methods, RpcError,
  type AddFileParams, type AddFileResult, type AgentStatus, type FileSummary, type WaiterSummary,
} from './protocol';

/** What the control methods need of the agent. */
export interface ControlTarget {
  status (): AgentStatus;
  addFile (params: AddFileParams): Promise<AddFileResult>;
  listFiles (): FileSummary[];
  listWaiters (): WaiterSummary[];
  /** Starts a clean shutdown after the answer has gone out. */
  requestShutdown (reason: string): void;
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

function optHeaders (p: Params, key: string): Record<string, string> | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ParamError(`"${key}" must be an object of header names to strings`);
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new ParamError(`header "${k}" must have a string value`);
  }
  return v as Record<string, string>;
}

export function createRpcServer (target: ControlTarget, log: Logger): JSONRPCServer<Connection> {
  const rpc = new JSONRPCServer<Connection>({ errorListener: () => {} });
  rpc.mapErrorToJSONRPCErrorResponse = (id: JSONRPCID, err: unknown) => {
    if (err instanceof ParamError) return createJSONRPCErrorResponse(id, RpcError.InvalidParams, `Invalid params: ${err.message}`);
    if (isFsError(err)) return createJSONRPCErrorResponse(id, RpcError.Refused, err.message, { errno: err.errno });
    log.error({ err }, 'control method failed');
    return createJSONRPCErrorResponse(id, RpcError.Internal, `Internal error: ${(err as Error)?.message ?? String(err)}`);
  };

  rpc.addMethod(Methods.ping, () => 'pong');
  rpc.addMethod(Methods.status, () => target.status());
  rpc.addMethod(Methods.shutdown, () => {
    target.requestShutdown('asked to stop over the control socket');
    return { stopping: true };
  });
  rpc.addMethod(Methods.addFile, raw => {
    const p = objectParams(raw);
    return target.addFile({ url: str(p, 'url'), name: optStr(p, 'name'), headers: optHeaders(p, 'headers') });
  });
  rpc.addMethod(Methods.listFiles, raw => { objectParams(raw); return target.listFiles(); });
  rpc.addMethod(Methods.listWaiters, raw => { objectParams(raw); return target.listWaiters(); });
  return rpc;
}
