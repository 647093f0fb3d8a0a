/**
 * Which proxy the agent's connections go through, read as curl reads it: `--proxy` first,
 * else `https_proxy`/`HTTPS_PROXY` for https:// URLs and `http_proxy`/`HTTP_PROXY` for
 * http:// ones (lower case first), `all_proxy`/`ALL_PROXY` for either when those are unset,
 * and `no_proxy`/`NO_PROXY` (host names, domains, IPs, `*`) for hosts reached directly, also
 * under `--proxy`.
 */
export interface ProxySettings {
  /** Proxy of http:// URLs; null: direct. */
  http: string | null;
  /** Proxy of https:// URLs; null: direct. */
  https: string | null;
  /** Hosts reached without a proxy, as NO_PROXY writes them ('' for none). */
  noProxy: string;
  /** Where they came from: the --proxy setting, the environment, or neither. */
  from: 'setting' | 'environment' | 'none';
}

/** The environment variables that choose a proxy, in the order they are read. */
export const PROXY_VARIABLES = [
  'https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY',
] as const;

function first (env: NodeJS.ProcessEnv, ...names: string[]): string | null {
  for (const n of names) {
    const v = env[n]?.trim();
    if (v !== undefined && v !== '') return v;
  }
  return null;
}

/** A proxy as curl takes it: `host:port` alone means http://host:port. */
function withScheme (proxy: string): string {
  return proxy.includes('://') ? proxy : `http://${proxy}`;
}

export function resolveProxies (setting: string | null, env: NodeJS.ProcessEnv): ProxySettings {
  const noProxy = first(env, 'no_proxy', 'NO_PROXY') ?? '';
  if (setting !== null) return { http: setting, https: setting, noProxy, from: 'setting' };
  const proxy = (...names: string[]): string | null => {
    const v = first(env, ...names);
    return v === null ? null : withScheme(v);
  };
  const all = proxy('all_proxy', 'ALL_PROXY');
  const http = proxy('http_proxy', 'HTTP_PROXY') ?? all;
  const https = proxy('https_proxy', 'HTTPS_PROXY') ?? all;
  return { http, https, noProxy, from: http === null && https === null ? 'none' : 'environment' };
}

/** Checks a proxy URL as a user gives it; throws a message without the setting's name. */
export function parseProxyUrl (raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new Error('must be a proxy URL such as http://proxy.example:3128');
  let url: URL;
  try {
    url = new URL(withScheme(raw));
  } catch {
    throw new Error(`must be a proxy URL such as http://proxy.example:3128 (got ${JSON.stringify(redactProxy(raw))})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`must be an http:// or https:// proxy URL (got ${JSON.stringify(redactProxy(raw))})`);
  }
  return url.href;
}

/** A proxy URL fit to print or log: its password (and a user name's token, if alone) replaced. */
export function redactProxy (raw: string): string {
  try {
    const url = new URL(withScheme(raw));
    if (url.password !== '') url.password = '***';
    else if (url.username !== '') url.username = '***';
    return url.href;
  } catch {
    // Not a URL: whatever sits before an @ may be credentials.
    return raw.replace(/^([^@/]*:\/\/)?[^@/]*@/, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
  }
}

/** Whether a proxy URL holds credentials (a user name or a password). */
export function proxyHasCredentials (raw: string): boolean {
  try {
    const url = new URL(withScheme(raw));
    return url.username !== '' || url.password !== '';
  } catch {
    return raw.includes('@');
  }
}

/** The proxies in one line fit to print, or null when connections go direct. */
export function describeProxies (p: ProxySettings): string | null {
  if (p.http === null && p.https === null) return null;
  const shown = (v: string | null): string => (v === null ? 'direct' : redactProxy(v));
  const which = p.http === p.https ? shown(p.https) : `${shown(p.https)} for https://, ${shown(p.http)} for http://`;
  const except = p.noProxy === '' ? '' : `, not for ${p.noProxy}`;
  return `${which} (from ${p.from === 'setting' ? 'the proxy setting' : 'the environment'}${except})`;
}
