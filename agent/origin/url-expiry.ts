import { FsError } from '../errors';
import { displayUrl } from './origin-info';

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

/**
 * The error for an origin's final refusal. A 401 or 403 for a URL whose own expiry has
 * passed says so, and how to go on, rather than a bare status.
 */
export function refusalError (status: number, url: string, now = Date.now()): FsError {
  const expires = urlExpiresAt(url);
  if ((status === 401 || status === 403) && expires !== null && expires <= now) {
    return new FsError('EACCES', `the URL expired at ${new Date(expires).toISOString()}; give a new one with fsctl set-url`);
  }
  return new FsError('EIO', `origin answered HTTP ${status} for ${displayUrl(url)}`);
}
