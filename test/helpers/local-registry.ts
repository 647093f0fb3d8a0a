import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { run } from './agent';

interface LockEntry { version: string; dev?: boolean; link?: boolean }

interface Version { manifest: Record<string, unknown>; tarball: string }

/**
 * An npm registry on 127.0.0.1 that serves exactly the packages a lockfile installs, so that a
 * test can `npm install -g` a packed fusestream with no other network. The tarballs come out
 * of npm's own cache (`npm pack URL --offline`), where `npm ci` left them; each version's
 * manifest is the package.json in its tarball.
 */
export class LocalRegistry {
  readonly url: string;
  readonly #server: http.Server;
  readonly #dir: string;

  private constructor (server: http.Server, dir: string) {
    this.#server = server;
    this.#dir = dir;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  /** Serves the non-dev packages of `lockfile` (an npm-shrinkwrap.json or package-lock.json). */
  static async start (lockfile: string, env: NodeJS.ProcessEnv): Promise<LocalRegistry> {
    const lock = JSON.parse(await fs.readFile(lockfile, 'utf8')) as { packages: Record<string, LockEntry> };
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-registry-'));
    const wanted = new Map<string, { name: string; entry: LockEntry; upstream: string }>();
    for (const [location, entry] of Object.entries(lock.packages)) {
      if (location === '' || entry.dev === true || entry.link === true) continue;
      const name = location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);
      const file = `${name.replace(/^@[^/]+\//, '')}-${entry.version}.tgz`;
      wanted.set(`${name}@${entry.version}`, { name, entry, upstream: `https://registry.npmjs.org/${name}/-/${file}` });
    }
    // One npm process for all of them; --offline: from the cache or not at all.
    const urls = [...wanted.values()].map(w => w.upstream);
    const packed = await run('npm', ['pack', '--offline', '--json', '--pack-destination', dir, ...urls], {
      env, cwd: dir, timeoutMs: 120_000,
    });
    if (packed.code !== 0) throw new Error(`npm pack --offline of the lockfile's packages failed: ${packed.stderr}`);
    const files = JSON.parse(packed.stdout.toString()) as Array<{ name: string; version: string; filename: string }>;

    const packuments = new Map<string, Map<string, Version>>();
    for (const f of files) {
      const w = wanted.get(`${f.name}@${f.version}`);
      if (w === undefined) continue;
      const tarball = path.join(dir, f.filename);
      const bytes = await fs.readFile(tarball);
      // The package's own package.json, as a registry serves it: npm decides from it which install scripts run.
      const own = await run('tar', ['-xzOf', tarball, 'package/package.json'], { timeoutMs: 30_000 });
      const manifest = {
        ...JSON.parse(own.stdout.toString()) as Record<string, unknown>,
        dist: { integrity: 'sha512-' + createHash('sha512').update(bytes).digest('base64'), tarball: '' },
      };
      const version = w.entry.version;
      let versions = packuments.get(w.name);
      if (versions === undefined) packuments.set(w.name, versions = new Map());
      versions.set(version, { manifest, tarball });
    }

    const server = http.createServer((req, res) => {
      const url = decodeURIComponent(req.url ?? '/').replace(/^\//, '');
      const tarball = /^-\/tarball\/(.+)\/([^/]+)\.tgz$/.exec(url);
      if (tarball !== null) {
        const v = packuments.get(tarball[1])?.get(tarball[2]);
        if (v === undefined) { res.writeHead(404).end(); return; }
        fs.readFile(v.tarball).then(
          b => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(b),
          () => res.writeHead(500).end()
        );
        return;
      }
      const versions = packuments.get(url);
      if (versions === undefined) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}'); return; }
      const base = `http://${req.headers.host}/-/tarball/${url}`;
      const doc = {
        name: url,
        'dist-tags': { latest: [...versions.keys()].pop() },
        versions: Object.fromEntries([...versions].map(([ver, v]) => [ver, {
          ...v.manifest, dist: { ...(v.manifest.dist as object), tarball: `${base}/${ver}.tgz` },
        }])),
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    return new LocalRegistry(server, dir);
  }

  async close (): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>(resolve => this.#server.close(() => resolve()));
    await fs.rm(this.#dir, { recursive: true, force: true });
  }
}
