import { FsError } from '../errors';
import { displayUrl, type RequestHeaders } from './origin-info';

/**
 * When a request's credentials stop working: the URL's signature or, for a bearer token
 * that is a JWT (as most OAuth access tokens are), its `exp`; the earlier of the two.
 */
export function credentialsExpireAt (url: string, headers: RequestHeaders): number | null {
  const times = [urlExpiresAt(url), bearerExpiresAt(headers)].filter((t): t is number => t !== null);
  return times.length === 0 ? null : Math.min(...times);
}

/** The `exp` claim of a JWT bearer token, or null when the header holds none that parses. */
export function bearerExpiresAt (headers: RequestHeaders): number | null {
  const auth = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const m = /^Bearer\s+[\w-]+\.([\w-]+)\.[\w-]*$/i.exec(auth?.trim() ?? '');
  if (m === null) return null;
  try {
    const claims = JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * When a signed URL stops working, read from the URL itself, where the common stores put it:
 * S3 and GCS V4 (`X-Amz-Date` / `X-Goog-Date` + `...-Expires` seconds), S3 V2, CloudFront
 * and GCS V2 (`Expires=<epoch seconds>`), Azure SAS (`se=<ISO 8601>` with `sig`). Null when
 * the URL says nothing, or nothing that parses.
 */
export function urlExpiresAt (url: string): number | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  const q = new Map<string, string>();
  for (const [k, v] of parsed.searchParams) q.set(k.toLowerCase(), v);
  for (const prefix of ['x-amz', 'x-goog']) {
    const signedAt = basicIsoTime(q.get(`${prefix}-date`));
    const seconds = q.get(`${prefix}-expires`);
    if (signedAt !== null && seconds !== undefined && /^\d{1,9}$/.test(seconds)) return signedAt + Number(seconds) * 1000;
  }
  const epoch = q.get('expires');
  if (epoch !== undefined && /^\d{9,11}$/.test(epoch)) return Number(epoch) * 1000;
  const se = q.get('se');
  if (se !== undefined && q.has('sig')) {
    const t = Date.parse(se);
    if (!Number.isNaN(t)) return t;
  }
  return null;
}

/** `20261127T142600Z`, as SigV4 writes it. */
function basicIsoTime (s: string | undefined): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  return m === null ? null : Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

/** An origin refused a request with a final status (4xx other than 408/429). */
export class OriginRefusedError extends FsError {
  constructor (readonly status: number, errno: 'EIO' | 'EACCES', message: string) { super(errno, message); }
}

/**
 * The error for an origin's final refusal. A 401 or 403 for a URL or bearer token whose own
 * expiry has passed says so, and how to go on, rather than a bare status.
 */
export function refusalError (status: number, url: string, headers: RequestHeaders = {}, now = Date.now()): OriginRefusedError {
  if (status === 401 || status === 403) {
    const urlExpiry = urlExpiresAt(url);
    if (urlExpiry !== null && urlExpiry <= now) {
      const message = `the URL expired at ${new Date(urlExpiry).toISOString()}; give a new one with fsctl set-url`;
      return new OriginRefusedError(status, 'EACCES', message);
    }
    const tokenExpiry = bearerExpiresAt(headers);
    if (tokenExpiry !== null && tokenExpiry <= now) {
      return new OriginRefusedError(status, 'EACCES', `the bearer token expired at ${new Date(tokenExpiry).toISOString()}; ` +
        'give a fresh one with fsctl set-url -H, or a --url-command that mints them');
    }
  }
  return new OriginRefusedError(status, 'EIO', `origin answered HTTP ${status} for ${displayUrl(url)}`);
}
