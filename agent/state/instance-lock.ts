import fs from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import path from 'node:path';
import { FsError } from '../errors';

/** The lock's name in each folder an agent owns. */
const LOCK_FILE = '.fusestream.lock';

interface Owner { pid: number; socket: string; startedAt: number }

/**
 * One agent per state folder and per cache folder. Two agents sharing either would
 * corrupt each other: one evicts bytes the other's database still claims, a name one
 * adds collides in the other's catalogue, one's cache sweep deletes the other's files.
 *
 * Each folder gets a lock file created exclusively (O_EXCL), holding the owner's pid and
 * socket so a refusal can say who holds it. A lock whose pid is gone (the agent was killed)
 * is stale: it is moved aside, checked to be the very lock judged stale (two agents may be
 * taking over at once), and the take-over tried again.
 */
export class InstanceLock {
  readonly #files: string[];

  private constructor (files: string[]) {
    this.#files = files;
  }

  /** Locks every folder, or none: throws EBUSY naming the agent that holds one. */
  static async acquire (dirs: string[], socket: string): Promise<InstanceLock> {
    const owner: Owner = { pid: process.pid, socket, startedAt: Date.now() };
    const taken: string[] = [];
    try {
      for (const dir of new Set(dirs.map(d => path.resolve(d)))) {
        const file = path.join(dir, LOCK_FILE);
        await lockOne(file, owner);
        taken.push(file);
      }
    } catch (err) {
      await Promise.all(taken.map(f => fs.rm(f, { force: true })));
      throw err;
    }
    return new InstanceLock(taken);
  }

  /** Drops the locks at exit. Synchronous: it runs in the process's 'exit' handler, off every hot path. */
  releaseSync (): void {
    for (const file of this.#files) {
      try { unlinkSync(file); } catch { /* gone already */ }
    }
  }
}

async function lockOne (file: string, me: Owner): Promise<void> {
  const content = JSON.stringify(me) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await fs.writeFile(file, content, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const held = await readOwner(file);
    // Removed meanwhile, or still being written: look again; unreadable twice, it is debris.
    if (held === null && attempt < 2) continue;
    if (held !== null && isAlive(held.pid) && held.pid !== me.pid) {
      throw new FsError('EBUSY', `another fusestream agent (pid ${held.pid}, socket ${held.socket}) is using ${path.dirname(file)}`);
    }
    await takeOverStale(file, held);
  }
  throw new FsError('EBUSY', `could not lock ${path.dirname(file)}: its lock file ${file} keeps changing`);
}

/** Moves a stale lock aside; if what was moved is not that lock (another agent just took over), puts it back. */
async function takeOverStale (file: string, stale: Owner | null): Promise<void> {
  const aside = `${file}.stale-${process.pid}`;
  try {
    await fs.rename(file, aside);
  } catch {
    return; // someone else moved it first
  }
  const moved = await readOwner(aside);
  if (moved !== null && (moved.pid !== stale?.pid || moved.startedAt !== stale.startedAt)) {
    await fs.link(aside, file).catch(() => {});
  }
  await fs.rm(aside, { force: true });
}

async function readOwner (file: string): Promise<Owner | null> {
  try {
    const o = JSON.parse(await fs.readFile(file, 'utf8')) as Owner;
    return typeof o.pid === 'number' ? o : null;
  } catch {
    return null;
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}
