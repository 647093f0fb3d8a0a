import type { Dispatcher } from 'undici';
import { FsError } from '../errors';
import { dropBody, failureDetail, headerValue, sendRequest, type OriginResponse } from './http-client';
import { tlsProblem } from './tls-trust';
import { displayUrl, type OriginInfo, type RequestHeaders } from './origin-info';
import { digestFromHeaders } from '../verify/digest';
import type { Endpoint, FileSource } from './file-source';
import { OriginRefusedError, refusalError } from './url-expiry';

/** S3 states an object's checksum only when asked; other origins ignore the header. */
const ASK_FOR_CHECKSUMS = { 'x-amz-checksum-mode': 'ENABLED' };

/**
 * Probes a file through its source; when the credentials are refused and the source can
 * mint fresh ones (a url-command), once more with those.
 */
export async function probeSource (
  dispatcher: Dispatcher, source: FileSource, signal?: AbortSignal
): Promise<{ origin: OriginInfo; endpoint: Endpoint }> {
  for (let tries = 1; ; tries++) {
    const endpoint = await source.endpoint(signal);
    try {
      const origin = await probeOrigin(dispatcher, endpoint.url, endpoint.headers, signal);
      source.accepted(endpoint);
      return { origin, endpoint };
    } catch (err) {
      const lapsed = err instanceof OriginRefusedError && (err.status === 401 || err.status === 403);
      if (!lapsed || tries > 1 || !source.refused(endpoint)) throw err;
    }
  }
}

/**
 * Asks an origin for a file's size, validators and Range support: HEAD first; a one-byte
 * ranged GET where HEAD is refused or does not say whether ranges work.
 */
export async function probeOrigin (
  dispatcher: Dispatcher,
  url: string,
  headers: RequestHeaders,
  signal?: AbortSignal
): Promise<OriginInfo> {
  let head: OriginResponse | null = null;
  try {
    head = await sendRequest(dispatcher, url, { method: 'HEAD', headers: { ...headers, ...ASK_FOR_CHECKSUMS }, signal });
    dropBody(head);
  } catch (err) {
    throw unreachable(url, err);
  }
  const headOk = head.statusCode >= 200 && head.statusCode < 300;
  if (!headOk && head.statusCode !== 405 && head.statusCode !== 501 && head.statusCode !== 403) {
    throw refusalError(head.statusCode, url, headers);
  }
  if (headOk) refuseIndexPage(head, url);
  const headInfo = headOk ? fromHead(head) : null;
  if (headInfo !== null && (headInfo.acceptRanges || headInfo.size === 0)) return headInfo;

  let res: OriginResponse;
  try {
    res = await sendRequest(dispatcher, url, { method: 'GET', headers: { ...headers, ...ASK_FOR_CHECKSUMS, range: 'bytes=0-0' }, signal });
  } catch (err) {
    throw unreachable(url, err);
  }
  dropBody(res);
  if (res.statusCode === 200 || res.statusCode === 206) refuseIndexPage(res, url);
  if (res.statusCode === 206) {
    const total = /\/(\d+)\s*$/.exec(headerValue(res.headers, 'content-range') ?? '');
    if (total === null) throw new FsError('EIO', `origin sent no total length in Content-Range for ${displayUrl(url)}`);
    return { size: Number(total[1]), acceptRanges: true, ...validators(res), digest: digestFromHeaders(res.headers, false) };
  }
  if (res.statusCode === 200) {
    const size = contentLength(res);
    if (size === null) throw new FsError('EIO', `origin sent no Content-Length for ${displayUrl(url)}; fusestream needs the size up front`);
    return { size, acceptRanges: false, ...validators(res), digest: digestFromHeaders(res.headers, true) };
  }
  if (res.statusCode === 416 && headInfo !== null) return headInfo;
  throw refusalError(res.statusCode, url, headers);
}

/**
 * A folder's index page is not a file: an HTML answer from a URL that ends, after redirects,
 * with "/" (`http://host/videos` answered by python's http.server redirects to `videos/`).
 * Added as a file, the listing would be what a program reads.
 */
function refuseIndexPage (res: OriginResponse, url: string): void {
  const html = /^\s*text\/html\b/i.test(headerValue(res.headers, 'content-type') ?? '');
  const history = (res.context as { history?: URL[] } | undefined)?.history;
  const final = history !== undefined && history.length > 0 ? history[history.length - 1] : new URL(url);
  if (html && final.pathname.endsWith('/')) {
    const hint = 'add the files in it with fsctl add --recursive URL';
    throw new FsError('EISDIR', `${displayUrl(final)} is a folder's index page, not a file: ${hint}`);
  }
}

function fromHead (res: OriginResponse): OriginInfo | null {
  const size = contentLength(res);
  if (size === null) return null;
  const acceptRanges = /\bbytes\b/i.test(headerValue(res.headers, 'accept-ranges') ?? '');
  return { size, acceptRanges, ...validators(res), digest: digestFromHeaders(res.headers, true) };
}

function contentLength (res: OriginResponse): number | null {
  const v = headerValue(res.headers, 'content-length');
  return v !== null && /^\d+$/.test(v) ? Number(v) : null;
}

export function validators (res: OriginResponse): { etag: string | null; lastModified: string | null } {
  return { etag: headerValue(res.headers, 'etag'), lastModified: headerValue(res.headers, 'last-modified') };
}

function unreachable (url: string, err: unknown): FsError {
  // The handshake failed: the origin was reached, and the fix is trust, not the network.
  if (tlsProblem(err) !== null) {
    return new FsError('EIO', `cannot connect securely to ${displayUrl(url)}: ${failureDetail(err)}`, { cause: err });
  }
  return new FsError('EIO', `origin unreachable: ${displayUrl(url)} (${failureDetail(err)})`, { cause: err });
}
