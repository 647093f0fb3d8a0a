import fs from 'node:fs/promises';
import path from 'node:path';

const PROBE_BYTES = 64 * 1024 * 1024;

/**
 * True when the cache folder's filesystem keeps sparse files sparse: extending a file with
 * ftruncate allocates no blocks (ext4, xfs, btrfs, tmpfs, APFS do; HFS+ and exFAT do not, so
 * every temp file there takes its full size on disk from its first open).
 */
export async function keepsFilesSparse (dir: string): Promise<boolean> {
  const probe = path.join(dir, `.sparse-check-${process.pid}`);
  const handle = await fs.open(probe, 'w', 0o600);
  try {
    await handle.truncate(PROBE_BYTES);
    const { blocks } = await handle.stat();
    return blocks * 512 < PROBE_BYTES / 2;
  } finally {
    await handle.close();
    await fs.rm(probe, { force: true });
  }
}
