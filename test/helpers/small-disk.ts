import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { makeDirs, run, type AgentDirs } from './agent';

/**
 * A fresh set of agent folders whose cache folder is on a tmpfs of `size` (e.g. "40m"), to
 * fill a disk for real. Unmounted and removed by `cleanup` after the agent's own clean-up
 * (clean-ups run newest first; the agent's cannot remove a mounted folder). Null, with the
 * test skipped, where this machine does not let the test mount one.
 */
export async function smallDiskDirs (
  cleanup: (fn: () => Promise<void>) => void, t: TestContext, size: string
): Promise<AgentDirs | null> {
  const dirs = await makeDirs();
  const disk = path.join(dirs.dir, 'small-disk');
  await fs.mkdir(disk);
  const mounted = await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', disk]);
  if (mounted.code !== 0) {
    await fs.rm(dirs.dir, { recursive: true, force: true });
    t.skip(`cannot mount a small tmpfs here: ${mounted.stderr.trim()}`);
    return null;
  }
  cleanup(async () => {
    await run('umount', ['-l', disk]);
    await fs.rm(dirs.dir, { recursive: true, force: true });
  });
  return { ...dirs, cacheDir: path.join(disk, 'cache') };
}
