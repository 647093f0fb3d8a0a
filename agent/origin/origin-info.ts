import { FsError } from '../errors';
import type { Digest } from '../verify/digest';

/** What the agent knows about one remote file from its origin's answers. */
export interface OriginInfo {
  size: number;
  etag: string | null;
  lastModified: string | null;
  acceptRanges: boolean;
  /** What the whole file must hash to, as the origin (or the user) states it; null when nobody does. */
  digest: Digest | null;
}

export type RequestHeaders = Record<string, string>;

type Validators = Pick<OriginInfo, 'etag' | 'lastModified'>;

/** The header that makes a ranged GET safe across versions, or null when none is strong enough. */
export function ifRangeValue (info: Validators): string | null {
  if (info.etag !== null && !info.etag.startsWith('W/')) return info.etag;
  return info.lastModified;
}

/** True when an answer's validators show a different version from the one we hold. */
export function validatorsChanged (held: Validators, etag: string | null, lastModified: string | null): boolean {
  if (held.etag !== null && etag !== null) return held.etag !== etag;
  if (held.lastModified !== null && lastModified !== null) return held.lastModified !== lastModified;
  return false;
}

/** The origin now serves another version (validators or size differ): cached bytes are stale. */
export class OriginChangedError extends FsError {
  constructor (message: string) { super('EIO', message); }
}

/** True when `now` is the same version as `held`, as far as size and validators can tell. */
export function sameVersion (held: OriginInfo, now: OriginInfo): boolean {
  return held.size === now.size && !validatorsChanged(held, now.etag, now.lastModified);
}

/**
 * A URL fit for a log line, an error message or fsctl's output: scheme, host and path, less
 * what may grant access: user info, the query string (where S3, GCS, CloudFront and Azure
 * sign) and every path segment that looks like a token (links signed in the path, share
 * links, API keys), each shown as `[redacted]`. The agent keeps the whole URL to itself.
 */
export function displayUrl (url: string | URL): string {
  let u: URL;
  try { u = typeof url === 'string' ? new URL(url) : url; } catch { return '[invalid URL]'; }
  const path = u.pathname.split('/').map(s => tokenLike(s) ? '[redacted]' : s).join('/');
  return `${u.protocol}//${u.host}${path}${u.search !== '' ? '?[redacted]' : ''}`;
}

/**
 * True for a path segment that may be a credential. Tokens are long runs of letters and
 * digits, without the separators names have; a name that looks like one (`Holiday2019Video`)
 * is redacted too, as the cheaper mistake.
 */
function tokenLike (segment: string): boolean {
  let text = segment;
  try { text = decodeURIComponent(segment); } catch { /* shown as it is */ }
  const stem = text.replace(/\.[A-Za-z0-9]{1,5}$/, '');
  return stem.split(/[-_ .+~,()[\]]+/).some(run =>
    run.length >= 24 ||
    (run.length >= 16 && /\d/.test(run) && /[A-Za-z]/.test(run)) ||
    (run.length >= 10 && /\d/.test(run) && /[a-z]/.test(run) && /[A-Z]/.test(run)) ||
    /[=%]/.test(run)
  );
}
