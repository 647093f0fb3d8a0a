import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * An id of the machine's current boot, or null when the platform will not say. Bytes in the
 * page cache outlive the agent but not a reboot: ranges written but not yet synced are
 * trusted only while this id is unchanged.
 */
export async function currentBootId (platform: NodeJS.Platform): Promise<string | null> {
  try {
    const id = platform === 'darwin'
      ? (await execFileAsync('sysctl', ['-n', 'kern.bootsessionuuid'], { timeout: 5_000 })).stdout
      : await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8');
    return id.trim() !== '' ? id.trim() : null;
  } catch {
    return null;
  }
}
