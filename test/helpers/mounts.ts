import fs from 'node:fs/promises';

/** True when the path is a mount point in this process's mount table. */
export async function isMounted (mountPoint: string): Promise<boolean> {
  const table = await fs.readFile('/proc/self/mounts', 'utf8');
  return table.split('\n').some(line => line.split(' ')[1] === mountPoint);
}

/** The errno code that stat() of the path gives, or null when it succeeds. */
export async function statError (p: string): Promise<string | null> {
  try {
    await fs.stat(p);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'unknown';
  }
}
