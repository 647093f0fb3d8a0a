import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import type Fuse from 'fuse-native';
import type { FuseOps } from 'fuse-native';
import type { Logger } from 'pino';
import { FsError } from '../errors';
import type { MountPlan } from '../platform/mount-options';
import { makeDir } from '../make-dir';

const execFileAsync = promisify(execFile);

/** Mounting that takes longer than this failed, even if fuse-native never says so. */
const MOUNT_TIMEOUT_MS = 15_000;

export interface MountOptions {
  /** Options, timeouts and mount-point rules for this platform (platform/mount-options). */
  plan: MountPlan;
  platform: NodeJS.Platform;
  log: Logger;
  /**
   * Told why a mount failed: what to say, and another plan to try once (macOS: the kernel
   * extension after FSKit), or null. Without it, the plan's own hint is said.
   */
  afterFailure?: (error: string) => { message: string; retry: MountPlan | null };
}

/** The mount itself failed (not the mount point, nor a timeout): `reason` is what the binding said. */
class MountFailed extends FsError {
  constructor (readonly reason: string, message: string) { super('EIO', message); }
}

/** The FUSE mount: stale-mount recovery, options that keep stalls isolated, and a clean unmount. */
export class FuseMount {
  readonly mountPoint: string;
  readonly #ops: FuseOps;
  readonly #opts: MountOptions;
  #fuse: Fuse | null = null;
  #metadataRefused = false;

  constructor (mountPoint: string, ops: FuseOps, opts: MountOptions) {
    this.mountPoint = mountPoint;
    this.#ops = ops;
    this.#opts = opts;
  }

  get mounted (): boolean { return this.#fuse !== null; }

  /** Hands the FUSE threads a copy of the tree to answer getattr and readdir from (null: ask JavaScript). */
  setMetadata (snapshot: Buffer | null): void {
    if (this.#fuse?.setMetadata(snapshot) !== false || this.#metadataRefused) return;
    this.#metadataRefused = true; // said once: the handlers answer, only more slowly under load
    this.#opts.log.warn('the FUSE threads could not take the copy of the file tree; listings are answered by the agent itself');
  }

  /**
   * A store closed (its gate shut, no fast read in flight): the binding's descriptor of its
   * temp file closes now, so a dropped file's blocks are freed while programs still hold it open.
   */
  retireFastReads (state: Buffer): void {
    this.#fuse?.retireFastReads(state);
  }

  /** getattr and readdir answers the FUSE threads gave without JavaScript. */
  get metadataAnswers (): number { return this.#fuse?.metadataAnswers() ?? 0; }

  async mount (): Promise<void> {
    const { plan, log, afterFailure } = this.#opts;
    try {
      await this.#mountWith(plan);
    } catch (err) {
      if (afterFailure === undefined || !(err instanceof MountFailed)) throw err;
      const { message, retry } = afterFailure(err.reason);
      if (retry === null) throw new FsError('EIO', message);
      log.warn(message);
      await this.#mountWith(retry);
    }
  }

  async #mountWith (plan: MountPlan): Promise<void> {
    const { platform, log } = this.#opts;
    await prepareMountPoint(this.mountPoint, platform, plan.helperCreatesMountPoint, log);
    // Loaded here, not at import: a missing libfuse is reported by the prerequisite check.
    const FuseNative = require('fuse-native') as typeof Fuse;
    const fuse = new FuseNative(this.mountPoint, this.#ops, {
      mkdir: false,
      force: true,
      helperCreatesMountPoint: plan.helperCreatesMountPoint,
      // No auto_cache or kernel_cache: the open handler says per open whether the kernel keeps
      // the page cache (it does unless the content changed), so no open invalidates it and
      // blocks behind other readers' pending reads.
      options: plan.options,
      timeout: plan.fuseTimeouts,
    });
    await withTimeout(new Promise<void>((resolve, reject) => {
      fuse.mount(err => {
        if (err === null || err === undefined) return resolve(); // nanoresource may pass either
        reject(new MountFailed(err.message, `could not mount ${this.mountPoint} (${err.message}): ${plan.failureHint}`));
      });
    }), MOUNT_TIMEOUT_MS, `mounting ${this.mountPoint} did not finish within ${MOUNT_TIMEOUT_MS / 1000} s: ${plan.failureHint}`);
    this.#fuse = fuse;
  }

  /** Unmounts (lazily, as fuse-native does); falls back to fusermount -uz if that fails. */
  async unmount (): Promise<void> {
    const fuse = this.#fuse;
    if (fuse === null) return;
    this.#fuse = null;
    try {
      await new Promise<void>((resolve, reject) => fuse.unmount(err => (err ? reject(err) : resolve())));
    } catch (err) {
      this.#opts.log.warn({ err }, 'unmount failed; detaching the mount lazily');
      await forceUnmount(this.mountPoint, this.#opts.platform);
    }
  }
}

/**
 * Creates the mount point if missing (unless the platform's mount helper does: macFUSE's
 * creates it in /Volumes, where the user may not) and clears a stale mount a crashed agent
 * left behind ("Transport endpoint is not connected", ENXIO on macOS). Refuses a folder
 * that holds files, which the mount would hide.
 */
export async function prepareMountPoint (
  mountPoint: string, platform: NodeJS.Platform, helperCreates: boolean, log: Logger
): Promise<void> {
  try {
    if (!(await fs.stat(mountPoint)).isDirectory()) {
      throw new FsError('ENOTDIR', `mount point ${mountPoint} is a file, not a folder (choose another with --mount)`);
    }
  } catch (err) {
    if (err instanceof FsError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN' || code === 'ECONNABORTED' || code === 'ENXIO') {
      log.warn({ mountPoint }, 'found a stale mount left by an agent that died; clearing it');
      await forceUnmount(mountPoint, platform);
    } else if (code === 'ENOENT' && helperCreates) {
      return;
    } else if (code !== 'ENOENT') {
      throw new FsError('EIO', `mount point ${mountPoint} is not usable: ${(err as Error).message}`);
    }
  }
  try {
    await makeDir(mountPoint, 0o755);
  } catch (err) {
    throw new FsError('EIO', `cannot create the mount point ${mountPoint}: ${(err as Error).message}`);
  }
  const entries = await fs.readdir(mountPoint);
  if (entries.length > 0) {
    throw new FsError('EEXIST', `mount point ${mountPoint} is not empty; the mount would hide its files (choose another with --mount)`);
  }
}

/** The command that detaches a mount even while files are open on it. */
export function forceUnmountCommand (platform: NodeJS.Platform, mountPoint: string): [string, string[]] {
  return platform === 'darwin' ? ['diskutil', ['unmount', 'force', mountPoint]] : ['fusermount', ['-uz', mountPoint]];
}

async function forceUnmount (mountPoint: string, platform: NodeJS.Platform): Promise<void> {
  const [cmd, args] = forceUnmountCommand(platform, mountPoint);
  try {
    await execFileAsync(cmd, args, { timeout: 10_000 });
  } catch (err) {
    throw new FsError('EIO', `could not unmount ${mountPoint}: ${(err as Error).message}`);
  }
}

function withTimeout<T> (p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new FsError('EIO', message)), ms); }),
  ]).finally(() => clearTimeout(timer));
}
