/** One entry of a folder's index page. */
export interface IndexLink {
  /** Absolute URL of the file or subfolder. */
  url: string;
  /** Its name in the folder, percent-decoded, without a trailing "/". */
  name: string;
  isFolder: boolean;
}

const ANCHOR = /<a\s[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))/gi;
const ENTITY = /&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: '\'' };

function decodeEntities (s: string): string {
  return s.replace(ENTITY, (_m, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return NAMED[lower] ?? '';
  });
}

/**
 * The files and subfolders an index page lists, as nginx's autoindex, Apache's mod_autoindex
 * and `python3 -m http.server` write them: every link that names a direct child of the
 * page's folder. Links elsewhere (the parent, other sites, Apache's `?C=N;O=D` sort links,
 * anchors, deeper paths) are dropped, and so are duplicates. `pageUrl` must end with "/".
 */
export function linksOfIndex (html: string, pageUrl: string): IndexLink[] {
  const page = new URL(pageUrl);
  const found = new Map<string, IndexLink>();
  for (const m of html.matchAll(ANCHOR)) {
    const href = decodeEntities(m[1] ?? m[2] ?? m[3] ?? '').trim();
    if (href === '' || href.startsWith('#') || href.startsWith('?')) continue;
    let url: URL;
    try { url = new URL(href, page); } catch { continue; }
    if (url.origin !== page.origin || url.search !== '' || !url.pathname.startsWith(page.pathname)) continue;
    const rest = url.pathname.slice(page.pathname.length);
    const isFolder = rest.endsWith('/');
    const segment = isFolder ? rest.slice(0, -1) : rest;
    if (segment === '' || segment.includes('/')) continue;
    let name: string;
    try { name = decodeURIComponent(segment); } catch { continue; }
    if (name === '.' || name === '..') continue;
    url.hash = '';
    if (!found.has(url.href)) found.set(url.href, { url: url.href, name, isFolder });
  }
  return [...found.values()];
}
