import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import type Fuse from 'fuse-native';
import type { FuseOps } from 'fuse-native';
import type { Logger } from 'pino';
import { FsError } from '../errors';

const execFileAsync = promisify(execFile);

/**
 * The kernel keeps at most this many read-ahead requests in flight per mount (default 12)
 * and blocks new readers past the congestion threshold (default 9): twelve reads stalled on
 * one file then starve every other file. Raised so stalled reads cannot block healthy ones,
 * and so every waiting read reaches the agent (and its list of waiters).
 */
const MAX_BACKGROUND = 64;
const CONGESTION_THRESHOLD = 48;
/** libfuse 2.9 caps a read request at 128 KiB whatever is asked; ask for exactly that. */
const MAX_READ = 128 * 1024;
/**
 * fuse-native answers ETIMEDOUT on its own when a handler runs longer than its timeout, while
 * the handler goes on (and may later write into a buffer libfuse reused). Its timeout is set
 * this far above the store's own cap, so the store always answers first.
 */
const FUSE_TIMEOUT_MARGIN_MS = 30_000;
/** Metadata answers from memory; anything slower than this is a bug, not a wait. */
const FUSE_OP_TIMEOUT_MS = 30_000;
/** Mounting that takes longer than this failed, even if fuse-native never says so. */
const MOUNT_TIMEOUT_MS = 15_000;

export interface MountOptions {
  readMaxWaitMs: number;
  log: Logger;
}

/** The FUSE mount: stale-mount recovery, options that keep stalls isolated, and a clean unmount. */
export class FuseMount {
  readonly mountPoint: string;
  readonly #ops: FuseOps;
  readonly #opts: MountOptions;
  #fuse: Fuse | null = null;

  constructor (mountPoint: string, ops: FuseOps, opts: MountOptions) {
    this.mountPoint = mountPoint;
    this.#ops = ops;
    this.#opts = opts;
  }

  get mounted (): boolean { return this.#fuse !== null; }

  async mount (): Promise<void> {
    await prepareMountPoint(this.mountPoint, this.#opts.log);
    // Loaded here, not at import: a missing libfuse is reported by the prerequisite check.
    const FuseNative = require('fuse-native') as typeof Fuse;
    const fuse = new FuseNative(this.mountPoint, this.#ops, {
      mkdir: true,
      force: true,
      // auto_cache: open() keeps the page cache while size and mtime stay the same. Without
      // it every open invalidates the cache and blocks, unkillable, behind any pending read.
      autoCache: true,
      maxRead: MAX_READ,
      // fuse-native forwards a fixed list of -o options; the rest ride on the last one it
      // forwards and libfuse parses them as usual.
      fsname: 'fusestream',
      subtype: `fusestream,ro,max_background=${MAX_BACKGROUND},congestion_threshold=${CONGESTION_THRESHOLD}`,
      timeout: { default: FUSE_OP_TIMEOUT_MS, read: this.#opts.readMaxWaitMs + FUSE_TIMEOUT_MARGIN_MS },
    });
    await withTimeout(new Promise<void>((resolve, reject) => {
      fuse.mount(err => (err ? reject(err) : resolve()));
    }), MOUNT_TIMEOUT_MS, `mounting ${this.mountPoint} did not finish within ${MOUNT_TIMEOUT_MS / 1000} s`);
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
      await forceUnmount(this.mountPoint);
    }
  }
}

/**
 * Creates the mount point if missing and clears a stale mount a crashed agent left behind
 * ("Transport endpoint is not connected"). Refuses a folder that holds files, which the
 * mount would hide.
 */
async function prepareMountPoint (mountPoint: string, log: Logger): Promise<void> {
  try {
    if (!(await fs.stat(mountPoint)).isDirectory()) {
      throw new FsError('ENOTDIR', `mount point ${mountPoint} is a file, not a folder (choose another with --mount)`);
    }
  } catch (err) {
    if (err instanceof FsError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN' || code === 'ECONNABORTED' || code === 'ENXIO') {
      log.warn({ mountPoint }, 'found a stale mount left by an agent that died; clearing it');
      await forceUnmount(mountPoint);
    } else if (code !== 'ENOENT') {
      throw new FsError('EIO', `mount point ${mountPoint} is not usable: ${(err as Error).message}`);
    }
  }
  try {
    await fs.mkdir(mountPoint, { recursive: true });
  } catch (err) {
    throw new FsError('EIO', `cannot create the mount point ${mountPoint}: ${(err as Error).message}`);
  }
  const entries = await fs.readdir(mountPoint);
  if (entries.length > 0) {
    throw new FsError('EEXIST', `mount point ${mountPoint} is not empty; the mount would hide its files (choose another with --mount)`);
  }
}

async function forceUnmount (mountPoint: string): Promise<void> {
  const [cmd, args] = process.platform === 'darwin'
    ? ['diskutil', ['unmount', 'force', mountPoint]]
    : ['fusermount', ['-uz', mountPoint]];
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
