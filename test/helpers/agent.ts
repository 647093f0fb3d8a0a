import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { AgentClient } from '../../ctl/client';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
export const AGENT_BIN = path.join(ROOT, 'agent', 'main.js');
export const FSCTL_BIN = path.join(ROOT, 'ctl', 'main.js');

export interface AgentDirs { dir: string; mount: string; cacheDir: string; stateDir: string; socket: string }

export interface StartOptions {
  dirs?: AgentDirs;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Node's own options, before the agent's script (`--cpu-prof`, say). */
  nodeArgs?: string[];
}

/**
 * What in a user's environment points the agent or fsctl elsewhere: XDG folders, FUSESTREAM_*
 * settings, and the proxies and extra CAs a company machine sets (a proxy would be asked for
 * 127.0.0.1 too); tests that want them give them.
 */
const PLACE_VARIABLES = /^(XDG_RUNTIME_DIR|XDG_[A-Z]+_HOME|FUSESTREAM_.*|(https?|all|no)_proxy|(HTTPS?|ALL|NO)_PROXY|NODE_EXTRA_CA_CERTS)$/;

/**
 * The environment of every process the suite starts: the user's, less what would point the
 * agent or fsctl somewhere else, then `overrides` (an undefined value removes a variable).
 * The suite thus behaves the same in a desktop session, a CI job or a shell with odd values.
 */
export function childEnv (overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!PLACE_VARIABLES.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k]; else env[k] = v;
  }
  return env;
}

/** A fresh set of folders for one agent; short, because a Unix socket path must be. */
export async function makeDirs (): Promise<AgentDirs> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-'));
  return {
    dir,
    mount: path.join(dir, 'mnt'),
    cacheDir: path.join(dir, 'cache'),
    stateDir: path.join(dir, 'state'),
    socket: path.join(dir, 'agent.sock'),
  };
}

/** A running agent in a child process, on its own mount and socket. */
export class AgentProcess {
  readonly dirs: AgentDirs;
  readonly proc: ChildProcess;
  readonly logLines: Array<Record<string, unknown>> = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  #client: AgentClient | null = null;

  private constructor (dirs: AgentDirs, proc: ChildProcess) {
    this.dirs = dirs;
    this.proc = proc;
    this.exited = once(proc, 'exit').then(([code]) => code as number | null);
    let buffered = '';
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try { this.logLines.push(JSON.parse(line) as Record<string, unknown>); } catch { /* not a log line */ }
      }
    });
  }

  get mount (): string { return this.dirs.mount; }

  /** Starts an agent and resolves once it logs "ready" (mounted and listening). */
  static async start (opts: StartOptions = {}): Promise<AgentProcess> {
    const dirs = opts.dirs ?? await makeDirs();
    const args = [
      ...AGENT_NODE_FLAGS, // as every way a user starts it does
      ...(opts.nodeArgs ?? []),
      AGENT_BIN,
      '--mount',
      dirs.mount,
      '--cache-dir',
      dirs.cacheDir,
      '--state-dir',
      dirs.stateDir,
      '--socket',
      dirs.socket,
      ...(opts.args ?? []),
    ];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv(opts.env) });
    const agent = new AgentProcess(dirs, proc);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`agent not ready after 20 s:\n${agent.stderr}`)), 20_000);
        proc.stderr!.on('data', () => {
          if (agent.logLines.some(l => l.msg === 'ready')) { clearTimeout(timer); resolve(); }
        });
        void agent.exited.then(
          code => { clearTimeout(timer); reject(new Error(`agent exited with ${code} before ready:\n${agent.stderr}`)); }
        );
      });
    } catch (err) {
      // An agent that never became ready must not outlive the test (nor keep its mount).
      await agent.cleanup();
      throw err;
    }
    return agent;
  }

  /** Resolves with the first log line whose message matches, woken by the agent's output. */
  waitForLog (pattern: RegExp, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const find = (): Record<string, unknown> | undefined => this.logLines.find(l => pattern.test(String(l.msg)));
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onData = (): void => {
        const line = find();
        if (line === undefined) return;
        done();
        resolve(line);
      };
      const timer = setTimeout(() => { done(); reject(new Error(`no log line matching ${pattern} in ${timeoutMs} ms`)); }, timeoutMs);
      const done = (): void => { clearTimeout(timer); this.proc.stderr!.off('data', onData); };
      // Registered after the constructor's parser, so logLines already holds the new lines.
      this.proc.stderr!.on('data', onData);
    });
  }

  async rpc<T> (method: string, params?: object): Promise<T> {
    this.#client ??= await AgentClient.connect(this.dirs.socket);
    return this.#client.call<T>(method, params);
  }

  /** Adds a URL and returns its name in the mount. */
  async add (url: string, name?: string): Promise<string> {
    const res = await this.rpc<{ file: { name: string } }>('files.add', name === undefined ? { url } : { url, name });
    return res.file.name;
  }

  path (name: string): string { return path.join(this.dirs.mount, name); }

  /** Sends a signal and waits for the exit code. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.#client?.close();
    this.#client = null;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    this.proc.kill(signal);
    return this.exited;
  }

  /**
   * Leaves nothing behind whatever state the test ended in: stops the agent (SIGKILL if it
   * will not go), detaches the mount, removes the folders.
   */
  async cleanup (): Promise<void> {
    this.#client?.close();
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    await execFileAsync('fusermount', ['-uz', this.dirs.mount]).catch(() => {});
    await fs.rm(this.dirs.dir, { recursive: true, force: true }).catch(() => {});
  }
}

export interface RunResult { code: number | null; stdout: Buffer; stderr: string; ms: number }

/** Runs a command as a separate process (never a sync call in this process: see docs/FUSE-FACTS.md). */
export function run (
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; onSpawn?: (pid: number) => void } = {}
): Promise<RunResult> {
  const began = performance.now();
  return new Promise(resolve => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(opts.env), cwd: opts.cwd });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => { err += s; });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('close', code => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err, ms: performance.now() - began });
    });
    // A command that cannot be started (not installed) is a result, not an exception.
    child.on('error', e => {
      if (timer) clearTimeout(timer);
      resolve({ code: null, stdout: Buffer.concat(out), stderr: err + e.message, ms: performance.now() - began });
    });
  });
}

/** `fsctl` against this agent's socket. */
export function fsctl (agent: AgentProcess, args: string[]): Promise<RunResult & { text: string }> {
  return run(process.execPath, [FSCTL_BIN, '--socket', agent.dirs.socket, ...args]).then(r => ({ ...r, text: r.stdout.toString('utf8') }));
}

/** Reads [offset, offset+length) of a file with dd in a child process. */
export function readRange (file: string, offset: number, length: number, opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run('dd', [`if=${file}`, 'bs=65536', `skip=${offset}`, `count=${length}`, 'iflag=skip_bytes,count_bytes', 'status=none'], opts);
}

/** Opens a file and closes it at once, in a child process: the open starts its download. */
export async function openOnce (file: string): Promise<void> {
  const r = await run('dd', [`if=${file}`, 'count=0', 'status=none'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`opening ${file} failed: ${r.stderr}`);
}

/** sha256 of a whole file, read by a child process. */
export async function hashFile (file: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await run('sha256sum', [file], opts);
  if (r.code !== 0) throw new Error(`sha256sum ${file} failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString().split(' ')[0];
}

/** Times `ls -l` of a folder in a child process. */
export async function timeLs (dir: string): Promise<{ ms: number; code: number | null; text: string }> {
  const r = await run('ls', ['-l', dir], { timeoutMs: 30_000 });
  return { ms: r.ms, code: r.code, text: r.stdout.toString() };
}
