import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';

/** How a served file misbehaves. Offsets are absolute positions in the file. */
export interface Faults {
  /** Serve at most this many bytes per second to each response. */
  throttle?: number;
  /** Stop sending forever (connection kept open) when a response reaches this offset. */
  stallAt?: number;
  /** Close the connection when a response reaches this offset; `dropTimes` responses do (default 1). */
  dropAt?: number;
  dropTimes?: number;
  /** Ignore Range and always answer 200 with the whole file; HEAD says nothing of ranges. */
  noRange?: boolean;
  /** Answer the first `times` GETs with `status` (and Retry-After if given). */
  failFirst?: { status: number; times: number; retryAfter?: string };
  /** After the first GET, answer every request with this status. */
  statusAfterFirstGet?: number;
  /** Answer HEAD with 405, as some origins do. */
  refuseHead?: boolean;
  /** Send no Content-Length (chunked), to test origins that do not announce a size. */
  noLength?: boolean;
  /**
   * Serve only requests with valid credentials, as an API's storage does: a signed link
   * (`signedUrl`, or one from `/_mint/url`; 403 without or after expiry) or a bearer token
   * (from `/_mint/bearer`; 401 without or after expiry).
   */
  access?: 'signed' | 'bearer';
  /** Serve with this Content-Type (a hand-made index page: "text/html"). */
  contentType?: string;
  /** Answer every request with 302 to this path (a redirect loop, pointed at itself). */
  redirectTo?: string;
  /** State the whole file's digest (of its true content) in this header's format. */
  statesDigest?: 'repr-digest' | 'digest' | 'content-md5' | 'x-amz-checksum-sha256' | 'x-goog-hash';
  /** Flip the byte at this offset in the first `corruptTimes` (default 1) bodies that carry it. */
  corruptAt?: number;
  corruptTimes?: number;
}

/** A server's key and certificate, PEM. */
interface TlsIdentity { key: Buffer; cert: Buffer }

interface ServedFile {
  content: Buffer;
  etag: string;
  lastModified: string;
  faults: Faults;
  gets: number;
  drops: number;
  corruptions: number;
}

/** Deterministic pseudo-random content: AES-CTR keystream of a seed, fast for large files. */
export function generateContent (seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(size));
}

export function sha256 (buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * The project's own HTTP origin on 127.0.0.1, used by the tests, the benchmark and the demo:
 * serves generated files with Range, ETag and Last-Modified, counts the bytes it sends, and
 * injects faults per file (throttle, stall, drop, no Range, 5xx, refused HEAD). `/` is an
 * index page of the top-level files; `signedUrl` makes links that expire.
 *
 * It also acts as a web API that hands out temporary access, for url-commands to call:
 * `GET /_mint/url?file=NAME&validMs=N` prints a signed link valid N ms;
 * `GET /_mint/opaque?file=NAME&validMs=N` prints a link valid N ms whose token says nothing of
 * when it expires (as many APIs' links are), refused with 403 after;
 * `GET /_mint/bearer?file=NAME&validMs=N` prints `{"url", "headers": {"authorization": "Bearer <JWT>"}}`
 * with a token valid N ms (its `exp`, in whole seconds, as JWTs have it).
 */
export class TestOrigin {
  readonly #server: http.Server | https.Server;
  /** https: when started with a certificate. */
  readonly scheme: 'http' | 'https';
  readonly #files = new Map<string, ServedFile>();
  readonly #sockets = new Set<Socket>();
  readonly #bytesSent = new Map<string, number>();
  readonly #secret = randomBytes(32);
  /** Opaque grants handed out by `/_mint/opaque` (`?grant=`): grant -> the file and when it stops working. */
  readonly #opaque = new Map<string, { name: string; expiresAt: number }>();
  /** Bodies being sent now, per file and in all, and the most there ever were at once. */
  readonly #active = new Map<string, number>();
  readonly #maxActive = new Map<string, number>();
  #activeAll = 0;
  maxActiveAll = 0;
  readonly requests: Array<{ file: string; method: string; range: string | null; ifRange: string | null }> = [];
  port = 0;
  /** TCP connections accepted since start: shows whether clients keep connections alive. */
  connections = 0;
  /** Links and tokens handed out by `/_mint/…`. */
  mints = 0;
  /** How folder index pages look: as nginx's autoindex, Apache's mod_autoindex or `python3 -m http.server` write them. */
  indexStyle: 'nginx' | 'apache' | 'python' = 'nginx';
  /** Requests refused for missing or expired credentials. */
  refusals = 0;

  private constructor (tls: TlsIdentity | null) {
    const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => { void this.#handle(req, res); };
    this.#server = tls === null ? http.createServer(handle) : https.createServer(tls, handle);
    this.scheme = tls === null ? 'http' : 'https';
    this.#server.on('connection', s => {
      this.connections++;
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  /** Starts on a free port of 127.0.0.1; over HTTPS with `tls` (tools/tls-material.ts makes one). */
  static async start (opts: { tls?: { key: string; cert: string } } = {}): Promise<TestOrigin> {
    const tls = opts.tls === undefined
      ? null
      : { key: await fs.readFile(opts.tls.key), cert: await fs.readFile(opts.tls.cert) };
    const origin = new TestOrigin(tls);
    origin.#server.listen(0, '127.0.0.1');
    await once(origin.#server, 'listening');
    origin.port = (origin.#server.address() as AddressInfo).port;
    return origin;
  }

  /** Serves `name` with `size` generated bytes (or the given content); returns the content. */
  add (name: string, sizeOrContent: number | Buffer, faults: Faults = {}): Buffer {
    const content = typeof sizeOrContent === 'number' ? generateContent(name, sizeOrContent) : sizeOrContent;
    this.#files.set(
      name,
      {
        content,
        etag: `"${sha256(content).slice(0, 16)}"`,
        lastModified: new Date(Date.UTC(2026, 0, 1)).toUTCString(),
        faults,
        gets: 0,
        drops: 0,
        corruptions: 0,
      }
    );
    return content;
  }

  /** Stops serving `name` (a file removed at the origin). */
  remove (name: string): void {
    this.#files.delete(name);
  }

  /** Replaces a file's faults (a stalled origin recovers, say). */
  setFaults (name: string, faults: Faults): void {
    this.#files.get(name)!.faults = faults;
  }

  url (name: string): string {
    return `${this.scheme}://127.0.0.1:${this.port}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  /**
   * A link signed as CloudFront signs one (`Expires=<epoch seconds>&Signature=…`): it works
   * until then, and is refused with 403 after, as a temporary link from a web API is.
   */
  signedUrl (name: string, validForMs: number): string {
    const expires = Math.ceil((Date.now() + validForMs) / 1000);
    return `${this.url(name)}?Expires=${expires}&Signature=${this.#sign(name, expires)}`;
  }

  #sign (name: string, expires: number): string {
    return createHmac('sha256', this.#secret).update(`${name}\n${expires}`).digest('hex');
  }

  /** A JWT-shaped bearer token for `name`, valid `validForMs` (rounded up to a whole second). */
  bearerToken (name: string, validForMs: number): string {
    const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: name, exp: Math.ceil((Date.now() + validForMs) / 1000) })}`;
    return `${body}.${createHmac('sha256', this.#secret).update(body).digest('base64url')}`;
  }

  /** True when `req` may read `name`: its signature or bearer token is valid and not expired. */
  #allowed (name: string, access: Faults['access'], requested: URL, req: http.IncomingMessage): boolean {
    const grant = requested.searchParams.get('grant');
    if (grant !== null) {
      const given = this.#opaque.get(grant);
      return given !== undefined && given.name === name && Date.now() < given.expiresAt;
    }
    const signature = requested.searchParams.get('Signature');
    if (signature !== null) {
      const expires = Number(requested.searchParams.get('Expires'));
      return signature === this.#sign(name, expires) && Date.now() < expires * 1000;
    }
    if (access === 'bearer') {
      const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(req.headers.authorization ?? '');
      if (m === null || createHmac('sha256', this.#secret).update(`${m[1]}.${m[2]}`).digest('base64url') !== m[3]) return false;
      const claims = JSON.parse(Buffer.from(m[2], 'base64url').toString()) as { sub: string; exp: number };
      return claims.sub === name && Date.now() < claims.exp * 1000;
    }
    return access === undefined;
  }

  /** The API side: hands out a signed link or a bearer token for a file. */
  #mint (kind: string, requested: URL, res: http.ServerResponse): void {
    const name = requested.searchParams.get('file') ?? '';
    const validMs = Number(requested.searchParams.get('validMs') ?? '60000');
    if (!this.#files.has(name) || !(validMs > 0)) { res.writeHead(404).end('no such file\n'); return; }
    this.mints++;
    if (kind === 'url') { res.writeHead(200, { 'content-type': 'text/plain' }).end(this.signedUrl(name, validMs) + '\n'); return; }
    if (kind === 'opaque') {
      const token = randomBytes(16).toString('hex');
      this.#opaque.set(token, { name, expiresAt: Date.now() + validMs });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${this.url(name)}?grant=${token}\n`);
      return;
    }
    const body = { url: this.url(name), headers: { authorization: `Bearer ${this.bearerToken(name, validMs)}` } };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  bytesSent (name: string): number { return this.#bytesSent.get(name) ?? 0; }

  gets (name: string): number { return this.#files.get(name)?.gets ?? 0; }

  /** Most bodies of `name` ever sent at once: the connections a client used in parallel. */
  maxActive (name: string): number { return this.#maxActive.get(name) ?? 0; }

  /** Bodies of `name` being sent right now. */
  active (name: string): number { return this.#active.get(name) ?? 0; }

  async close (): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>(resolve => this.#server.close(() => resolve()));
  }

  async #handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requested = new URL(req.url ?? '/', 'http://x');
    const mint = /^\/_mint\/(url|bearer|opaque)$/.exec(requested.pathname);
    if (mint !== null) { this.#mint(mint[1], requested, res); return; }
    const name = decodeURIComponent(requested.pathname.slice(1));
    const file = this.#files.get(name);
    if (!this.#allowed(name, file?.faults.access, requested, req)) {
      this.refusals++;
      res.writeHead(requested.searchParams.has('Signature') || file?.faults.access !== 'bearer' ? 403 : 401).end();
      return;
    }
    const range = req.headers.range ?? null;
    this.requests.push({ file: name, method: req.method ?? '', range, ifRange: (req.headers['if-range'] as string | undefined) ?? null });
    if (file === undefined && (name === '' || name.endsWith('/'))) { this.#index(name, res); return; }
    // A folder asked for without its "/": redirected to it, as python's http.server, nginx and Apache do.
    if (file === undefined && [...this.#files.keys()].some(k => k.startsWith(`${name}/`))) {
      res.writeHead(301, { location: `/${name.split('/').map(encodeURIComponent).join('/')}/` }).end();
      return;
    }
    if (file === undefined) { res.writeHead(404).end(); return; }
    const f = file.faults;
    if (f.redirectTo !== undefined) { res.writeHead(302, { location: f.redirectTo }).end(); return; }
    if (req.method === 'HEAD' && f.refuseHead) { res.writeHead(405).end(); return; }
    if (req.method === 'GET') {
      file.gets++;
      if (f.statusAfterFirstGet !== undefined && file.gets > 1) { res.writeHead(f.statusAfterFirstGet).end(); return; }
      if (f.failFirst !== undefined && file.gets <= f.failFirst.times) {
        res.writeHead(f.failFirst.status, f.failFirst.retryAfter ? { 'retry-after': f.failFirst.retryAfter } : {}).end();
        return;
      }
    }
    const size = file.content.length;
    const headers: http.OutgoingHttpHeaders = {
      etag: file.etag,
      'last-modified': file.lastModified,
      'content-type': f.contentType ?? 'application/octet-stream',
    };
    if (!f.noRange) headers['accept-ranges'] = 'bytes';
    if (f.statesDigest !== undefined) Object.assign(headers, digestHeader(f.statesDigest, file.content));
    let start = 0;
    let end = size;
    let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
    const ifRange = req.headers['if-range'];
    if (m !== null && !f.noRange && (ifRange === undefined || ifRange === file.etag || ifRange === file.lastModified)) {
      start = Number(m[1]);
      end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
      if (start >= size) { res.writeHead(416, { 'content-range': `bytes */${size}` }).end(); return; }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end - 1}/${size}`;
    }
    if (!f.noLength) headers['content-length'] = end - start;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') { res.end(); return; }
    this.#active.set(name, this.active(name) + 1);
    this.#maxActive.set(name, Math.max(this.maxActive(name), this.active(name)));
    this.maxActiveAll = Math.max(this.maxActiveAll, ++this.#activeAll);
    // A body counts until its connection closes or it is complete, whichever comes first.
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      this.#active.set(name, this.active(name) - 1);
      this.#activeAll--;
    };
    res.once('close', uncount);
    try {
      await this.#send(name, file, res, start, end);
    } finally {
      uncount();
    }
  }

  /**
   * The index page of a folder ("" for the root, else "a/b/"): its files and subfolders, in
   * `indexStyle`, with the parent link and (Apache) sort links a real one has; 404 for a
   * folder that holds nothing. What rclone's http remote and `fsctl add --recursive` read.
   */
  #index (folder: string, res: http.ServerResponse): void {
    const children = new Map<string, { isFolder: boolean; size: number }>();
    for (const [name, f] of this.#files) {
      if (!name.startsWith(folder)) continue;
      const rest = name.slice(folder.length);
      const slash = rest.indexOf('/');
      if (slash < 0) children.set(rest, { isFolder: false, size: f.content.length });
      else children.set(rest.slice(0, slash), { isFolder: true, size: 0 });
    }
    if (children.size === 0 && folder !== '') { res.writeHead(404).end(); return; }
    const esc = (s: string): string => s.replace(/[<>&"']/g, c => `&#${c.charCodeAt(0)};`);
    const entries = [...children].sort(([a], [b]) => a < b ? -1 : 1).map(([n, c]) => {
      const href = encodeURIComponent(n) + (c.isFolder ? '/' : '');
      return { href, text: esc(n) + (c.isFolder ? '/' : ''), size: c.size, isFolder: c.isFolder };
    });
    const title = `/${folder}`;
    let page: string;
    if (this.indexStyle === 'python') {
      const items = entries.map(e => `<li><a href="${e.href}">${e.text}</a></li>`).join('\n');
      page = '<!DOCTYPE HTML>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
        `<title>Directory listing for ${esc(title)}</title>\n</head>\n` +
        `<body>\n<h1>Directory listing for ${esc(title)}</h1>\n<hr>\n<ul>\n${items}\n</ul>\n<hr>\n</body>\n</html>\n`;
    } else if (this.indexStyle === 'apache') {
      const rows = entries.map(e => `<tr><td valign="top"><img src="/icons/${e.isFolder ? 'folder' : 'movie'}.gif" alt="[   ]"></td>` +
        `<td><a href="${e.href}">${e.text}</a></td><td align="right">2026-01-01 00:00  </td><td align="right">${e.isFolder ? '-' : e.size}</td></tr>`);
      const parent = `/${folder.split('/').slice(0, -2).join('/')}`;
      page = '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n' +
        `  <title>Index of ${esc(title)}</title>\n </head>\n <body>\n` +
        `<h1>Index of ${esc(title)}</h1>\n  <table>\n   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>` +
        '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th></tr>\n' +
        `<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="${parent}">Parent Directory</a></td></tr>\n` +
        `${rows.join('\n')}\n</table>\n<address>Apache/2.4.62 (Debian) Server at 127.0.0.1 Port ${this.port}</address>\n</body></html>\n`;
    } else {
      const lines = entries.map(e => `<a href="${e.href}">${e.text}</a>${' '.repeat(Math.max(1, 51 - e.text.length))}01-Jan-2026 00:00` +
        `${(e.isFolder ? '-' : String(e.size)).padStart(20)}`);
      page = `<html>\n<head><title>Index of ${esc(title)}</title></head>\n<body>\n<h1>Index of ${esc(title)}</h1><hr><pre>` +
        `<a href="../">../</a>\n${lines.join('\n')}\n</pre><hr></body>\n</html>\n`;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
  }

  async #send (name: string, file: ServedFile, res: http.ServerResponse, start: number, end: number): Promise<void> {
    const f = file.faults;
    const piece = f.throttle ? Math.max(1024, Math.min(64 * 1024, Math.floor(f.throttle / 50))) : 256 * 1024;
    const began = Date.now();
    let pos = start;
    let closed = false;
    res.on('close', () => { closed = true; });
    while (pos < end && !closed) {
      if (f.stallAt !== undefined && pos >= f.stallAt) { // hang until the client goes (or close() destroys the socket)
        if (!closed) await new Promise(resolve => res.once('close', resolve));
        return;
      }
      if (f.dropAt !== undefined && pos >= f.dropAt && file.drops < (f.dropTimes ?? 1)) {
        file.drops++;
        res.socket?.destroy();
        return;
      }
      let next = Math.min(end, pos + piece);
      if (f.stallAt !== undefined && pos < f.stallAt) next = Math.min(next, f.stallAt);
      if (f.dropAt !== undefined && pos < f.dropAt && file.drops < (f.dropTimes ?? 1)) next = Math.min(next, f.dropAt);
      let bytes = file.content.subarray(pos, next);
      if (f.corruptAt !== undefined && f.corruptAt >= pos && f.corruptAt < next && file.corruptions < (f.corruptTimes ?? 1)) {
        file.corruptions++;
        bytes = Buffer.from(bytes);
        bytes[f.corruptAt - pos] ^= 0xff;
      }
      const ok = res.write(bytes);
      this.#bytesSent.set(name, this.bytesSent(name) + (next - pos));
      pos = next;
      if (!ok && !closed) await drainOrClose(res);
      if (f.throttle) {
        const due = began + ((pos - start) / f.throttle) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait));
      }
    }
    if (!closed) res.end();
  }
}

/** The header an origin of each kind states a whole file's digest in. */
function digestHeader (kind: NonNullable<Faults['statesDigest']>, content: Buffer): http.OutgoingHttpHeaders {
  const b64 = (alg: string): string => createHash(alg).update(content).digest('base64');
  switch (kind) {
    case 'repr-digest': return { 'repr-digest': `sha-256=:${b64('sha256')}:` };
    case 'digest': return { digest: `SHA-512=${b64('sha512')}` };
    case 'content-md5': return { 'content-md5': b64('md5') };
    case 'x-amz-checksum-sha256': return { 'x-amz-checksum-sha256': b64('sha256') };
    case 'x-goog-hash': return { 'x-goog-hash': `crc32c=AAAAAA==,md5=${b64('md5')}` };
  }
}

function drainOrClose (res: http.ServerResponse): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}
