import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { run } from '../test/helpers/agent';
import { generateContent } from '../tools/test-origin';
import { freePort } from '../tools/free-port';
import { makeTlsMaterial } from '../tools/tls-material';

/**
 * The bench's origin: Debian's nginx, as users' origins are nginx-like servers and CDNs. The
 * bench's first origin was the project's node test server, run inside the bench process; it
 * answered each socket read with a small write from one busy event loop, and rclone, whose
 * reader takes the bytes as they come, spent nearly twice the CPU per GiB on it (5.6 s
 * against 2.7-3.0 s with nginx) and read at half the rate: the origin, not the client, set
 * the figure. nginx sends with sendfile in large writes, as real servers do.
 *
 * Plain HTTP and HTTPS (a CA and a certificate for 127.0.0.1 made here with openssl) serve
 * the same folder; `slow/` serves its files again at `throttle` bytes per second per
 * connection (nginx's limit_rate). `/` and `slow/` are autoindex pages, which rclone's http remote lists.
 * Every request is logged with the bytes it sent, so the bench can count what a system
 * fetched (bytesSent).
 */
export class NginxOrigin {
  readonly dir: string;
  readonly port: number;
  readonly tlsPort: number;
  /** The CA that signed the HTTPS certificate: what the clients are told to trust. */
  readonly caFile: string;
  readonly #proc: ChildProcess;
  readonly #log: string;

  private constructor (dir: string, port: number, tlsPort: number, proc: ChildProcess) {
    this.dir = dir;
    this.port = port;
    this.tlsPort = tlsPort;
    this.caFile = path.join(dir, 'ca.pem');
    this.#proc = proc;
    this.#log = path.join(dir, 'access.log');
  }

  /** Why nginx cannot serve the bench here, or null when it can. */
  static async missing (): Promise<string | null> {
    const r = await run('sh', ['-c', 'command -v nginx && command -v openssl']);
    return r.code === 0 ? null : 'nginx and openssl are needed for the bench origin (apt-get install nginx-light openssl)';
  }

  /** Writes `files` (name -> size; content from generateContent, same seed as the name) and starts nginx over them. */
  static async start (files: ReadonlyArray<readonly [string, number | Buffer]>, throttle: number): Promise<NginxOrigin> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-nginx-'));
    const root = path.join(dir, 'files');
    await fs.mkdir(root);
    // slow/ holds the same files (hard links): a real folder, so the root's index lists it for rclone.
    await fs.mkdir(path.join(root, 'slow'));
    for (const [name, content] of files) {
      await fs.writeFile(path.join(root, name), typeof content === 'number' ? generateContent(name, content) : content);
      await fs.link(path.join(root, name), path.join(root, 'slow', name));
    }
    await run('sync', []); // the files written out now, not while a figure runs
    await makeTlsMaterial(dir); // ca.pem, server.pem, server.key for 127.0.0.1
    const [port, tlsPort] = [await freePort(), await freePort()];
    const conf = path.join(dir, 'nginx.conf');
    await fs.writeFile(conf, nginxConf(dir, root, port, tlsPort, throttle));
    const proc = spawn('nginx', ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    const origin = new NginxOrigin(dir, port, tlsPort, proc);
    try {
      await origin.#waitUntilServing(() => stderr);
    } catch (err) {
      await origin.close();
      throw err;
    }
    return origin;
  }

  /** The URL of a file, plain or HTTPS; `slow/` in front of a name is the throttled copy. */
  url (name: string, tls = false): string {
    return tls ? `https://127.0.0.1:${this.tlsPort}/${name}` : `http://127.0.0.1:${this.port}/${name}`;
  }

  /**
   * Bytes the origin sent for `name` (headers included) over requests that have ended. A
   * request ends in nginx's log when its connection closes: waits until the log has been
   * still for a moment, so connections a mount dropped at the end are counted.
   */
  async bytesSent (name: string): Promise<number> {
    let size = -1;
    for (;;) {
      const now = (await fs.stat(this.#log).catch(() => ({ size: 0 }))).size;
      if (now === size) break;
      size = now;
      await new Promise(resolve => setTimeout(resolve, 300));
    }
    const text = await fs.readFile(this.#log, 'utf8').catch(() => '');
    let total = 0;
    for (const line of text.split('\n')) {
      const [uri, bytes] = line.split(' ');
      if (uri === `/${name}`) total += Number(bytes);
    }
    return total;
  }

  async close (): Promise<void> {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) {
      this.#proc.kill('SIGTERM'); // nginx: fast shutdown
      await once(this.#proc, 'exit');
    }
    await fs.rm(this.dir, { recursive: true, force: true });
  }

  async #waitUntilServing (stderr: () => string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.#proc.exitCode !== null) throw new Error(`nginx exited: ${stderr()}`);
      const up = await new Promise<boolean>(resolve => {
        const s = net.connect(this.port, '127.0.0.1', () => { s.end(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (up) return;
      if (Date.now() > deadline) throw new Error(`nginx did not start: ${stderr()}`);
      await new Promise(resolve => setTimeout(resolve, 50));
    }
  }
}

function nginxConf (dir: string, root: string, port: number, tlsPort: number, throttle: number): string {
  // `user root`: the bench runs as root here, and nginx's default user could not read the temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  default_type application/octet-stream;
  log_format counted '$uri $bytes_sent';
  access_log ${dir}/access.log counted;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp;
  fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp;
  scgi_temp_path ${dir}/tmp;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    root ${root};
    location / { autoindex on; }
    location /slow/ { autoindex on; limit_rate ${throttle}; }
  }
}
`;
}
