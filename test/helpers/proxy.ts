import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../tools/free-port';

/** Why the proxy tests cannot run here (tinyproxy is missing), or null. */
export const PROXY_MISSING = ['/usr/bin/tinyproxy', '/usr/sbin/tinyproxy'].some(p => existsSync(p))
  ? null
  : 'tinyproxy is not installed: sudo apt-get install tinyproxy';

export interface ProxyOptions {
  /** Demand these credentials (Basic): a request without them gets 407. */
  auth?: { user: string; password: string };
  /** Refuse this machine's requests (403), as a proxy refuses a client it does not serve. */
  refuse?: boolean;
}

/**
 * Debian's tinyproxy on 127.0.0.1, in the foreground, with a config written for the test:
 * a real HTTP proxy that tunnels (CONNECT) to any port. Its log tells which tunnels it opened.
 */
export class TinyProxy {
  readonly port: number;
  readonly #dir: string;
  readonly #proc: ChildProcess;
  readonly #auth: ProxyOptions['auth'];
  #log = '';

  private constructor (dir: string, port: number, proc: ChildProcess, auth: ProxyOptions['auth']) {
    this.#dir = dir;
    this.port = port;
    this.#proc = proc;
    this.#auth = auth;
  }

  static async start (opts: ProxyOptions = {}): Promise<TinyProxy> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-proxy-'));
    const port = await freePort();
    const lines = [
      // No LogFile: in the foreground it logs to stdout, which says when it listens and whom it tunnels to.
      `Port ${port}`, 'Listen 127.0.0.1', 'Timeout 600', 'MaxClients 200', 'LogLevel Info', 'DisableViaHeader Yes',
      // No ConnectPort line: tunnels to every port (Debian's own config allows only 443 and 563).
      opts.refuse === true ? 'Allow 192.0.2.1' : 'Allow 127.0.0.1',
      ...(opts.auth !== undefined ? [`BasicAuth ${opts.auth.user} ${opts.auth.password}`] : []),
    ];
    if (os.userInfo().uid === 0) lines.push('User root', 'Group root'); // else, as root, it would drop to nobody
    await fs.writeFile(path.join(dir, 'tinyproxy.conf'), lines.join('\n') + '\n');
    const proc = spawn('tinyproxy', ['-d', '-c', path.join(dir, 'tinyproxy.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const proxy = new TinyProxy(dir, port, proc, opts.auth);
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`tinyproxy did not start in 10 s: ${proxy.#log}${stderr}`)), 10_000);
        proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
          proxy.#log += s;
          if (proxy.#log.includes('Accepting connections')) { clearTimeout(timer); resolve(); }
        });
        proc.once('exit', code => { clearTimeout(timer); reject(new Error(`tinyproxy exited with ${code}: ${proxy.#log}${stderr}`)); });
      });
    } catch (err) {
      await proxy.close();
      throw err;
    }
    return proxy;
  }

  /** The proxy's URL; with its credentials unless `withoutAuth`. */
  url (withoutAuth = false): string {
    const auth = this.#auth;
    const creds = auth !== undefined && !withoutAuth ? `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@` : '';
    return `http://${creds}127.0.0.1:${this.port}`;
  }

  /** The targets it was asked to tunnel to (CONNECT host:port), in order. */
  tunnels (): string[] {
    return [...this.#log.matchAll(/CONNECT (\S+) HTTP/g)].map(m => m[1]);
  }

  async close (): Promise<void> {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) {
      this.#proc.kill('SIGKILL');
      await once(this.#proc, 'exit');
    }
    await fs.rm(this.#dir, { recursive: true, force: true });
  }
}

/** Why the https:// proxy test cannot run here (stunnel is missing), or null. */
export const STUNNEL_MISSING = existsSync('/usr/bin/stunnel') ? null : 'stunnel is not installed: sudo apt-get install stunnel4';

/**
 * Debian's stunnel in front of a local port: TLS on its own port with the given certificate,
 * plain TCP to `target`. In front of tinyproxy it makes a real https:// proxy.
 */
export class TlsFront {
  readonly port: number;
  readonly #dir: string;
  readonly #proc: ChildProcess;

  private constructor (port: number, dir: string, proc: ChildProcess) {
    this.port = port;
    this.#dir = dir;
    this.#proc = proc;
  }

  static async start (target: number, identity: { cert: string; key: string }): Promise<TlsFront> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-stunnel-'));
    const port = await freePort();
    const conf = [
      'foreground = yes', 'pid =', `cert = ${identity.cert}`, `key = ${identity.key}`,
      '[front]', `accept = 127.0.0.1:${port}`, `connect = 127.0.0.1:${target}`,
    ].join('\n') + '\n';
    await fs.writeFile(path.join(dir, 'stunnel.conf'), conf);
    const proc = spawn('stunnel', [path.join(dir, 'stunnel.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const front = new TlsFront(port, dir, proc);
    let said = '';
    try {
      // It says so on stderr once it listens.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`stunnel did not start in 10 s: ${said}`)), 10_000);
        proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
          said += s;
          if (said.includes('Configuration successful')) { clearTimeout(timer); resolve(); }
        });
        proc.once('exit', code => { clearTimeout(timer); reject(new Error(`stunnel exited with ${code}: ${said}`)); });
      });
    } catch (err) {
      await front.close();
      throw err;
    }
    return front;
  }

  async close (): Promise<void> {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) {
      this.#proc.kill('SIGKILL');
      await once(this.#proc, 'exit');
    }
    await fs.rm(this.#dir, { recursive: true, force: true });
  }
}
