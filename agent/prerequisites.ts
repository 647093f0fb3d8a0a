import { constants } from 'node:fs';
import fs from 'node:fs/promises';
/**
 * Checks what the agent needs from the machine before it touches anything, and returns one
 * line per missing piece naming the fix (an empty list when all is there).
 */
export async function checkPrerequisites (): Promise<string[]> {
  const missing: string[] = [];
  try {
    require('fuse-native');
  } catch (err) {
    const hint = process.platform === 'darwin' ? 'install macFUSE (https://osxfuse.github.io)' : 'install libfuse2 (Debian/Ubuntu: sudo apt-get install libfuse2 fuse3)';
    missing.push(`the FUSE library could not be loaded (${(err as Error).message.split('\n')[0]}): ${hint}`);
  }
  if (process.platform === 'linux') {
    try {
      await fs.access('/dev/fuse', constants.R_OK | constants.W_OK);
    } catch {
      missing.push('/dev/fuse is missing or not usable by this user: load the fuse module (sudo modprobe fuse) and check its permissions');
    }
    try {
      await fs.access('/usr/bin/fusermount', constants.X_OK);
    } catch {
      try { await fs.access('/bin/fusermount', constants.X_OK); } catch {
        missing.push('fusermount is missing: install fuse3 (Debian/Ubuntu: sudo apt-get install fuse3)');
      }
    }
  }
  return missing;
}
