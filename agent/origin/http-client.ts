import { Agent, EnvHttpProxyAgent, errors, interceptors, request, type Dispatcher } from 'undici';
import { tlsProblem } from './tls-trust';
import type { ProxySettings } from './proxy-settings';
import type { RequestHeaders } from './origin-info';

/** How many redirects an origin may send before we call it broken. */
const MAX_REDIRECTS = 5;
/** A connection or header exchange that takes longer than this counts as a failed attempt. */
const CONNECT_AND_HEADERS_TIMEOUT_MS = 15_000;

export type OriginResponse = Dispatcher.ResponseData;

/** How the agent reaches origins: whom it trusts, and through which proxy. */
export interface NetworkOptions {
  /** Certificate authorities (PEM) replacing Node's default set; null: Node's default. */
  ca: string[] | null;
  proxies: ProxySettings;
}

/** Node's trusted authorities, no proxy. */
const DIRECT: NetworkOptions = { ca: null, proxies: { http: null, https: null, noProxy: '', from: 'none' } };

/** One shared connection pool for every origin; owned by the agent's root object. */
export function createOriginDispatcher (net: NetworkOptions = DIRECT): Dispatcher {
  const tlsOptions = net.ca === null ? {} : { ca: net.ca };
  const options = {
    connect: { timeout: CONNECT_AND_HEADERS_TIMEOUT_MS, ...tlsOptions },
    headersTimeout: CONNECT_AND_HEADERS_TIMEOUT_MS,
    keepAliveTimeout: 10_000,
  };
  const { http, https, noProxy } = net.proxies;
  // undici's EnvHttpProxyAgent routes each origin (direct, or a CONNECT tunnel through the
  // proxy), given the settings explicitly so the agent's own environment is not read twice.
  // Through a tunnel, the origin's TLS takes requestTls; an https:// proxy's own, proxyTls.
  const base: Dispatcher = http === null && https === null
    ? new Agent(options)
    : new EnvHttpProxyAgent({
      ...options, httpProxy: http ?? '', httpsProxy: https ?? '', noProxy, requestTls: tlsOptions, proxyTls: tlsOptions,
    });
  return base.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));
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

/**
 * A failed request's cause in a few words: a TLS or proxy failure in words a user can act on,
 * a system error's code and the address it concerns, or undici's message ("max redirects").
 */
export function failureDetail (err: unknown): string {
  const tls = tlsProblem(err);
  if (tls !== null) return tls;
  const proxy = err instanceof errors.RequestAbortedError ? /Proxy response \((\d+)\)/.exec(err.message) : null;
  if (proxy !== null) {
    const why = proxy[1] === '407' ? ': it wants credentials (give them in the proxy URL, http://user:password@host:port)' : '';
    return `the proxy refused the connection with HTTP ${proxy[1]}${why}`;
  }
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const code = e.code;
  if (typeof code === 'string' && !code.startsWith('UND_ERR')) {
    return typeof e.address === 'string' ? `${code} ${e.address}${e.port !== undefined ? `:${e.port}` : ''}` : code;
  }
  return (err as Error).message ?? String(err);
}

/** Discards a body we do not want, without letting an error escape. */
export function dropBody (res: OriginResponse): void {
  res.body.on('error', () => {});
  res.body.destroy();
}
