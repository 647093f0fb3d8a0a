import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * The command names of processes, for the list of waiting readers: /proc/PID/comm on Linux,
 * `ps` on macOS (no /proc there). A process that is gone, or not ours to see, is left out.
 * Asked only when someone lists the waiters, never on the read path.
 */
export async function processNames (platform: NodeJS.Platform, pids: readonly number[]): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  const unique = [...new Set(pids)].filter(p => Number.isInteger(p) && p > 0);
  if (unique.length === 0) return names;
  if (platform === 'linux') {
    await Promise.all(unique.map(async pid => {
      const comm = await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => null);
      if (comm !== null) names.set(pid, comm.trim());
    }));
    return names;
  }
  // `ps -o pid=,comm=` is the same on macOS and on Linux's procps; comm is a full path on macOS.
  const out = await execFileAsync('ps', ['-o', 'pid=,comm=', '-p', unique.join(',')], { timeout: 5_000 })
    .then(r => r.stdout, (err: { stdout?: string }) => err.stdout ?? ''); // ps exits 1 when some pid is gone
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(.+?)\s*$/.exec(line);
    if (m !== null) names.set(Number(m[1]), path.basename(m[2]));
  }
  return names;
}
