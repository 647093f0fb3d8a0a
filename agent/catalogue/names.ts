import { FsError } from '../errors';
import { displayUrl } from '../origin/origin-info';

/** Linux NAME_MAX: longest single path segment, in bytes. */
const MAX_SEGMENT_BYTES = 255;
/** Longest whole name inside the mount, in bytes; well under PATH_MAX with the mount point in front. */
const MAX_NAME_BYTES = 1024;
/** Deepest folder nesting a name may ask for. */
const MAX_DEPTH = 32;

/**
 * Checks a name a client asked for ("videos/2024/a.mp4") and returns it unchanged, or throws
 * an EINVAL/ENAMETOOLONG FsError that says which segment is wrong and why.
 */
export function validateName (name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new FsError('EINVAL', 'name must be a non-empty string');
  // A lone surrogate has no UTF-8 form: it would reach the kernel as U+FFFD, and two such names as one.
  if (/[\uD800-\uDFFF]/u.test(name)) throw new FsError('EINVAL', 'name is not valid Unicode (it has a lone surrogate)');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new FsError('ENAMETOOLONG', `name is longer than ${MAX_NAME_BYTES} bytes`);
  const segments = name.split('/');
  if (segments.length > MAX_DEPTH) throw new FsError('EINVAL', `name nests deeper than ${MAX_DEPTH} folders`);
  for (const seg of segments) {
    if (seg === '') throw new FsError('EINVAL', `name "${name}" has an empty segment (leading, trailing or double "/")`);
    if (seg === '.' || seg === '..') throw new FsError('EINVAL', `name "${name}" has a "${seg}" segment`);
    if (seg.includes('\0')) throw new FsError('EINVAL', 'name contains a NUL byte');
    if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) {
      throw new FsError('ENAMETOOLONG', `segment "${seg.slice(0, 40)}…" is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  return name;
}

/** The default name for a URL: its last path segment, percent-decoded. */
export function nameFromUrl (url: URL): string {
  const raw = url.pathname.split('/').pop() ?? '';
  let decoded = raw;
  try { decoded = decodeURIComponent(raw); } catch { /* keep the raw segment */ }
  if (url.pathname.endsWith('/')) {
    const hint = 'add the files in it with fsctl add --recursive URL';
    throw new FsError('EISDIR', `${displayUrl(url)} ends with "/", as a folder's URL does: ${hint}`);
  }
  if (decoded === '' || decoded.includes('/')) {
    throw new FsError('EINVAL', `cannot take a file name from ${displayUrl(url)}; give one with --name`);
  }
  return validateName(decoded);
}

/** Parses a URL a client sent: only http and https are accepted. */
export function parseUrl (value: unknown): URL {
  if (typeof value !== 'string') throw new FsError('EINVAL', 'url must be a string');
  let url: URL;
  try { url = new URL(value); } catch { throw new FsError('EINVAL', `not a valid URL: ${value}`); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FsError('EINVAL', `only http and https URLs can be mounted, not ${url.protocol}`);
  }
  return url;
}
