import { Agent, interceptors, request, type Dispatcher } from 'undici';
import type { RequestHeaders } from './origin-info';

/** How many redirects an origin may send before we call it broken. */
const MAX_REDIRECTS = 5;
/** A connection or header exchange that takes longer than this counts as a failed attempt. */
const CONNECT_AND_HEADERS_TIMEOUT_MS = 15_000;

export type OriginResponse = Dispatcher.ResponseData;

/** One shared connection pool for every origin; owned by the agent's root object. */
export function createOriginDispatcher (): Dispatcher {
  return new Agent({
    connect: { timeout: CONNECT_AND_HEADERS_TIMEOUT_MS },
    headersTimeout: CONNECT_AND_HEADERS_TIMEOUT_MS,
    keepAliveTimeout: 10_000,
  }).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
}

export interface OriginRequest {
  method: 'GET' | 'HEAD';
  headers: RequestHeaders;
  /** Fails the attempt when the body goes quiet this long (a stalled origin). */
  bodyTimeoutMs?: number;
  signal?: AbortSignal;
}

export function sendRequest (dispatcher: Dispatcher, url: string, req: OriginRequest): Promise<OriginResponse> {
  return request(url, {
    dispatcher,
    method: req.method,
    headers: req.headers,
    bodyTimeout: req.bodyTimeoutMs ?? 0,
    headersTimeout: CONNECT_AND_HEADERS_TIMEOUT_MS,
    signal: req.signal,
  });
}

export function headerValue (headers: OriginResponse['headers'], name: string): string | null {
  const v = headers[name];
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : v;
}

/** A failed request's cause in a few words: a system error's code, or undici's message ("max redirects"). */
export function failureDetail (err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
  return (err as Error).message ?? String(err);
}

/** Discards a body we do not want, without letting an error escape. */
export function dropBody (res: OriginResponse): void {
  res.body.on('error', () => {});
  res.body.destroy();
}
