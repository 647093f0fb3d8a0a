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
 * A URL fit for a log line or an error message: no user info and no query string, since
 * signed URLs carry their credentials there.
 */
export function displayUrl (url: string | URL): string {
  let u: URL;
  try { u = typeof url === 'string' ? new URL(url) : url; } catch { return '[invalid URL]'; }
  return `${u.protocol}//${u.host}${u.pathname}${u.search !== '' ? '?[redacted]' : ''}`;
}
