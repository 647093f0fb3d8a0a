import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';

/** How long the lock is kept after the last transfer ends: a player's next chunk should not take a new one. */
const RELEASE_AFTER_MS = 2000;
/**
 * How long transfers must have been active before the lock is taken. Starting the inhibitor
 * is a fork and exec on the event loop (30 ms on a small VM): not in the way of a read's
 * first bytes, and not worth it for a transfer that ends sooner than the machine could sleep.
 */
const TAKE_AFTER_MS = 1000;

/** The program that holds the machine awake for as long as it runs, or null where there is none. */
export interface InhibitorCommand {
  file: string;
  args: string[];
}

/**
 * What keeps the machine from sleeping while this agent lives:
 * - Linux: `systemd-inhibit` takes logind's idle and sleep lock and holds it while its
 *   command runs; the command is `cat` on a pipe from the agent, so a killed agent's lock
 *   goes with it (the pipe closes, cat ends).
 * - macOS: `caffeinate -i`, which prevents idle sleep, and with `-w` ends with the agent.
 */
export function inhibitorCommand (platform: NodeJS.Platform, agentPid: number): InhibitorCommand | null {
  if (platform === 'linux') {
    return {
      file: 'systemd-inhibit',
      args: ['--what=idle:sleep', '--who=fusestream', '--why=Streaming files to programs reading the mount', '--mode=block', 'cat'],
    };
  }
  if (platform === 'darwin') return { file: 'caffeinate', args: ['-i', '-w', String(agentPid)] };
  return null;
}

export interface SleepInhibitorOptions {
  command: InhibitorCommand | null;
  log: Logger;
  /** Whether any transfer is active now. */
  isActive: () => boolean;
  /** Keep the lock this long after the last transfer (ms). */
  releaseAfterMs?: number;
  /** Take the lock once transfers were active this long (ms). */
  takeAfterMs?: number;
}

/**
 * Holds an inhibitor while transfers are active. `poke()` (on every download state change)
 * takes it when a transfer is active and still is `takeAfterMs` later; while it is held, a
 * check each second lets it go once nothing was active for `releaseAfterMs`, so no state
 * change can be missed. Where
 * the inhibitor cannot run (no systemd-inhibit, no logind, a container) it says so once in
 * the log and the agent goes on without it.
 */
export class SleepInhibitor {
  readonly #command: InhibitorCommand | null;
  readonly #log: Logger;
  readonly #isActive: () => boolean;
  readonly #releaseAfterMs: number;
  readonly #takeAfterMs: number;
  #child: ChildProcess | null = null;
  #pendingTake: NodeJS.Timeout | null = null;
  #check: NodeJS.Timeout | null = null;
  #lastActiveAt = 0;
  #unavailable = false;
  #closed = false;

  constructor (opts: SleepInhibitorOptions) {
    this.#command = opts.command;
    this.#log = opts.log;
    this.#isActive = opts.isActive;
    this.#releaseAfterMs = opts.releaseAfterMs ?? RELEASE_AFTER_MS;
    this.#takeAfterMs = opts.takeAfterMs ?? TAKE_AFTER_MS;
  }

  /** True while the inhibitor runs. */
  get held (): boolean { return this.#child !== null; }

  poke (): void {
    if (this.#closed || !this.#isActive()) return;
    this.#lastActiveAt = performance.now();
    if (this.#takeAfterMs === 0) return this.#take();
    if (this.#child !== null || this.#pendingTake !== null || this.#unavailable) return;
    this.#pendingTake = setTimeout(() => {
      this.#pendingTake = null;
      if (!this.#closed && this.#isActive()) this.#take();
    }, this.#takeAfterMs);
    this.#pendingTake.unref();
  }

  /** Lets go for good (the agent stops). */
  close (): void {
    this.#closed = true;
    if (this.#pendingTake !== null) clearTimeout(this.#pendingTake);
    this.#pendingTake = null;
    this.#release();
  }

  #tick (): void {
    if (this.#isActive()) this.#lastActiveAt = performance.now();
    else if (performance.now() - this.#lastActiveAt >= this.#releaseAfterMs) this.#release();
  }

  #take (): void {
    if (this.#child !== null || this.#unavailable) return;
    if (this.#command === null) return this.#giveUp('this platform has no sleep inhibitor');
    const child = spawn(this.#command.file, this.#command.args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 1000) stderr += d; });
    child.stdin?.on('error', () => { /* it ended first: 'exit' says why */ });
    child.on('error', err => {
      if (this.#child === child) this.#forget();
      this.#giveUp(`${this.#command?.file} could not be started (${(err as NodeJS.ErrnoException).code ?? err.message})`);
    });
    child.on('exit', (code, signal) => {
      if (this.#child !== child) return; // released on purpose
      this.#forget();
      const why = stderr.trim().split('\n')[0] || (code !== null ? `exit status ${code}` : `signal ${signal}`);
      this.#giveUp(`${this.#command?.file} ended: ${why}`);
    });
    this.#child = child;
    this.#check = setInterval(() => this.#tick(), Math.min(1000, this.#releaseAfterMs));
    this.#check.unref();
    this.#log.info({ inhibitor: this.#command.file }, 'keeping the machine awake while files download');
  }

  /** Stops tracking the inhibitor; returns it, or null when none ran. */
  #forget (): ChildProcess | null {
    if (this.#check !== null) clearInterval(this.#check);
    this.#check = null;
    const child = this.#child;
    this.#child = null;
    return child;
  }

  #release (): void {
    const child = this.#forget();
    if (child === null) return;
    child.stdin?.end();
    child.kill('SIGTERM');
    this.#log.info({ inhibitor: this.#command?.file }, 'no download active: the machine may sleep again');
  }

  #giveUp (why: string): void {
    if (this.#unavailable) return;
    this.#unavailable = true;
    this.#log.warn({ reason: why }, 'cannot keep the machine awake during downloads; going on without it');
  }
}
