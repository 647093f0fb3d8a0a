import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { DashboardFeed, type DashboardSource } from './dashboard-feed';
import { loadDashboardSecret } from './dashboard-secret';

/** The page and its two files, shipped in the package's ui/ folder; nothing is loaded from elsewhere. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};
/** The repository's (or package's) ui/ folder, from dist/agent/ui/. */
const UI_DIR = path.resolve(__dirname, '..', '..', '..', 'ui');

/**
 * What the page may ask the agent to do, as control-API calls: the actions fsctl has for a
 * file (pause included), and adding a URL. Never a url-command, headers, a folder's settings or shutdown: a
 * web page must not make the agent run a program or send credentials.
 */
const ACTIONS: Record<string, readonly string[]> = {
  'files.cancel': ['file'],
  'files.resume': ['file'],
  'files.pause': ['file'],
  'files.pin': ['file'],
  'files.unpin': ['file'],
  'files.prefetch': ['file'],
  'files.verify': ['file'],
  'files.remove': ['file'],
  'cache.evict': ['file'],
  'files.add': ['url', 'name'],
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export interface DashboardOptions {
  /** 0: a free port the system picks. */
  port: number;
  secret: string;
  source: DashboardSource;
  /** Runs one control-API call (its JSON-RPC answer as JSON text). */
  call: (method: string, params: Record<string, unknown>) => Promise<unknown>;
  log: Logger;
  uiDir?: string;
}

/**
 * The dashboard: a page on 127.0.0.1 only, as Jupyter and Syncthing serve theirs. Every
 * request must name the loopback address in Host (a DNS-rebinding page names its own host)
 * and carry the agent's secret: the link `fsctl ui` opens gives it once, and the answer
 * turns it into an HttpOnly, SameSite=Strict cookie. A request that changes anything must
 * also come from the page's own origin. Everything is answered with a strict
 * Content-Security-Policy.
 */
export class DashboardServer {
  readonly #opts: DashboardOptions;
  readonly #server: http.Server;
  readonly #feed: DashboardFeed;
  readonly #secret: Buffer;
  #port = 0;

  constructor (opts: DashboardOptions) {
    this.#opts = opts;
    this.#secret = Buffer.from(opts.secret);
    this.#feed = new DashboardFeed(opts.source);
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        opts.log.error({ err }, 'dashboard request failed');
        if (!res.headersSent) this.#plain(res, 500, 'internal error');
        else res.destroy();
      });
    });
  }

  /** The page's address, without the secret. */
  get address (): string { return `http://127.0.0.1:${this.#port}/`; }
  /** The link that logs a browser in: the address with the secret, for `fsctl ui`. */
  get loginUrl (): string { return `${this.address}?token=${this.#opts.secret}`; }

  /** Something may have changed any file (the catalogue, a control call): the feed looks at all of them next. */
  changed (): void { this.#feed.changed(); }

  async listen (): Promise<void> {
    this.#server.listen(this.#opts.port, '127.0.0.1');
    await Promise.race([once(this.#server, 'listening'), once(this.#server, 'error').then(([err]) => { throw err; })]);
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async close (): Promise<void> {
    this.#feed.close();
    this.#server.closeAllConnections();
    await new Promise<void>(resolve => this.#server.close(() => resolve()));
  }

  async #handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${this.#port}` && host !== `localhost:${this.#port}`) {
      return this.#plain(res, 403, 'forbidden: the dashboard answers only to http://127.0.0.1 (its Host header)');
    }
    const url = new URL(req.url ?? '/', `http://${host}`);
    const token = url.searchParams.get('token');
    if (req.method === 'GET' && url.pathname === '/' && token !== null) {
      if (!this.#isSecret(token)) return this.#plain(res, 403, 'forbidden: that link is not this agent\'s; run fsctl ui');
      // The secret leaves the address bar (and the history) at once, kept in a cookie the page's scripts cannot read.
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        location: '/',
        'set-cookie': `${this.#cookieName()}=${this.#opts.secret}; HttpOnly; SameSite=Strict; Path=/`,
      });
      res.end();
      return;
    }
    if (!this.#isSecret(this.#cookie(req))) return this.#plain(res, 403, 'forbidden: open the dashboard with fsctl ui');

    if (req.method === 'GET') {
      if (url.pathname === '/api/feed') return this.#feed.subscribe(res);
      const asset = STATIC[url.pathname];
      if (asset === undefined) return this.#plain(res, 404, 'not found');
      const body = await fs.readFile(path.join(this.#opts.uiDir ?? UI_DIR, asset.file));
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': body.length });
      res.end(body);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/api/call') {
      // A form or a script on another site can send a POST with the cookie (SameSite aside): its Origin gives it away.
      if (req.headers.origin !== `http://${host}`) return this.#plain(res, 403, 'forbidden: not from the dashboard\'s own page');
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return this.#plain(res, 415, 'send application/json');
      const body = await readBody(req, 64 * 1024);
      if (body === null) return this.#plain(res, 413, 'the body is too large');
      let call: { method?: unknown; params?: unknown };
      try {
        call = JSON.parse(body) as typeof call;
      } catch {
        return this.#plain(res, 400, 'the body is not JSON');
      }
      const allowed = typeof call.method === 'string' ? ACTIONS[call.method] : undefined;
      const params = call.params !== null && typeof call.params === 'object' && !Array.isArray(call.params)
        ? call.params as Record<string, unknown>
        : null;
      if (allowed === undefined || params === null || Object.keys(params).some(k => !allowed.includes(k))) {
        return this.#plain(res, 403, `forbidden: the dashboard may call only ${Object.keys(ACTIONS).join(', ')}, with their own fields`);
      }
      const answer = await this.#opts.call(call.method as string, params);
      const text = JSON.stringify(answer);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
      res.end(text);
      return;
    }
    return this.#plain(res, 405, 'method not allowed');
  }

  #cookieName (): string { return `fusestream_${this.#port}`; }

  #cookie (req: http.IncomingMessage): string | null {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, v] = part.trim().split('=');
      if (k === this.#cookieName()) return v ?? null;
    }
    return null;
  }

  #isSecret (given: string | null): boolean {
    if (given === null) return false;
    const b = Buffer.from(given);
    return b.length === this.#secret.length && timingSafeEqual(b, this.#secret);
  }

  #plain (res: http.ServerResponse, status: number, text: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
    res.end(text + '\n');
  }
}

/**
 * Starts the dashboard with the agent's secret (made on first use); resolves with it, or with
 * the problem in one line when it could not listen (its port taken, say), already logged.
 */
export async function startDashboard (
  opts: Omit<DashboardOptions, 'secret'> & { stateDir: string }
): Promise<DashboardServer | string> {
  try {
    const dashboard = new DashboardServer({ ...opts, secret: await loadDashboardSecret(opts.stateDir) });
    await dashboard.listen();
    return dashboard;
  } catch (err) {
    const problem = `the dashboard could not start (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` +
      `${opts.port !== 0 ? ` on port ${opts.port}: choose another with --ui-port` : ''}); the mount works without it`;
    opts.log.warn(problem);
    return problem;
  }
}

/** The request's body as text; null (and the rest not read) past `max` bytes. */
async function readBody (req: http.IncomingMessage, max: number): Promise<string | null> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
