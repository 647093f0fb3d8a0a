import picomatch from 'picomatch';
import type { Dispatcher } from 'undici';
import { FsError } from '../errors';
import { dropBody, failureDetail, headerValue, sendRequest } from '../origin/http-client';
import { displayUrl, type RequestHeaders } from '../origin/origin-info';
import { refusalError } from '../origin/url-expiry';
import { linksOfIndex } from './index-page';

/** Most files one folder may bring; more is refused, not cut, so a user never gets half a folder unknowingly. */
const MAX_FOLDER_FILES = 10_000;
/** Most index pages one scan reads (subfolders included). */
const MAX_PAGES = 2000;
/** Larger index pages are not index pages a person would browse: refused. */
const MAX_PAGE_BYTES = 8 * 1024 * 1024;
/** Pages read at once. */
const PAGE_CONCURRENCY = 4;

/** Which files of a folder to take; paths are relative to the folder, "/"-separated. */
export interface FolderFilter {
  /** Globs a file must match one of (none: every file). A glob without "/" matches the file's own name at any depth. */
  include: string[];
  exclude: string[];
  /** Subfolder levels to enter: 0 takes the folder's own files only; null: no limit. */
  depth: number | null;
}

export interface ScannedFile {
  url: string;
  /** Path under the folder, decoded: "season 1/ep1.mp4". */
  path: string;
}

export interface FolderScan {
  files: ScannedFile[];
  /** Files the filters left out, and subfolders beyond the depth: counts, for the summary. */
  filteredOut: number;
  deeperFolders: number;
  /** Links whose names cannot be names in the mount ("a%2Fb" decodes to a "/"), with why. */
  rejected: Array<{ path: string; reason: string }>;
}

/** A folder's URL as the scan uses it: http(s), with a trailing "/", no query. */
export function folderUrl (raw: string): string {
  const url = new URL(raw);
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.href;
}

/**
 * Reads a folder's index page and, to `depth`, its subfolders' pages, and lists the files
 * the filters keep. Every page must be HTML; links that leave the folder are ignored (see
 * index-page.ts). Refuses with an FsError rather than return part of a folder.
 */
export async function scanFolder (
  dispatcher: Dispatcher, rootUrl: string, headers: RequestHeaders, filter: FolderFilter, signal?: AbortSignal
): Promise<FolderScan> {
  const keep = fileFilter(filter);
  const result: FolderScan = { files: [], filteredOut: 0, deeperFolders: 0, rejected: [] };
  const seen = new Set<string>([rootUrl]);
  let queue: Array<{ url: string; path: string; level: number }> = [{ url: rootUrl, path: '', level: 0 }];
  let pages = 0;
  while (queue.length > 0) {
    const batch = queue.splice(0, PAGE_CONCURRENCY);
    pages += batch.length;
    if (pages > MAX_PAGES) {
      throw new FsError('EINVAL', `${displayUrl(rootUrl)} has more than ${MAX_PAGES} folders; add a part of it, or use --depth`);
    }
    const listed = await Promise.all(batch.map(async page => {
      const html = await readIndex(dispatcher, page.url, headers, signal);
      return { page, links: linksOfIndex(html, page.url) };
    }));
    const next: typeof queue = [];
    for (const { page, links } of listed) {
      for (const link of links) {
        const path = page.path === '' ? link.name : `${page.path}/${link.name}`;
        if (link.name.includes('/') || link.name.includes('\0')) {
          result.rejected.push({ path, reason: 'its name holds a "/" or a NUL once decoded' });
        } else if (link.isFolder) {
          if (seen.has(link.url)) continue; // a loop of links
          seen.add(link.url);
          if (filter.depth !== null && page.level >= filter.depth) { result.deeperFolders++; continue; }
          next.push({ url: link.url, path, level: page.level + 1 });
        } else if (!keep(path)) {
          result.filteredOut++;
        } else {
          result.files.push({ url: link.url, path });
          if (result.files.length > MAX_FOLDER_FILES) {
            const narrow = 'narrow it with --include, --exclude or --depth';
            throw new FsError('EINVAL', `${displayUrl(rootUrl)} lists more than ${MAX_FOLDER_FILES} files; ${narrow}`);
          }
        }
      }
    }
    queue = [...queue, ...next];
  }
  result.files.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return result;
}

function fileFilter (filter: FolderFilter): (path: string) => boolean {
  const include = filter.include.map(globMatcher);
  const exclude = filter.exclude.map(globMatcher);
  return path => (include.length === 0 || include.some(m => m(path))) && !exclude.some(m => m(path));
}

/** A glob with a "/" matches the whole path; one without, the file's own name at any depth ("*.mp4"). */
function globMatcher (glob: string): (path: string) => boolean {
  const match = picomatch(glob, { dot: true });
  return glob.includes('/') ? match : path => match(path.slice(path.lastIndexOf('/') + 1));
}

async function readIndex (dispatcher: Dispatcher, url: string, headers: RequestHeaders, signal?: AbortSignal): Promise<string> {
  let res;
  try {
    res = await sendRequest(dispatcher, url, { method: 'GET', headers, bodyTimeoutMs: 30_000, signal });
  } catch (err) {
    throw new FsError('EIO', `could not read the index page ${displayUrl(url)} (${failureDetail(err)})`, { cause: err });
  }
  if (res.statusCode !== 200) {
    dropBody(res);
    throw refusalError(res.statusCode, url, headers);
  }
  const type = headerValue(res.headers, 'content-type') ?? '';
  if (!/^(text\/html|application\/xhtml\+xml)\b/i.test(type)) {
    dropBody(res);
    throw new FsError('EINVAL', `${displayUrl(url)} is not an index page (Content-Type ${type === '' ? 'missing' : type}, not text/html)`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_PAGE_BYTES) {
      dropBody(res);
      throw new FsError('EINVAL', `the index page ${displayUrl(url)} is larger than ${MAX_PAGE_BYTES / 1024 / 1024} MiB`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
