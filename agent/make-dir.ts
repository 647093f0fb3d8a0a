import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * `mkdir -p` that always ends. Node's own `{ recursive: true }` spins forever (at full CPU)
 * where the kernel answers ENOENT for a folder it will never create, as under /proc: it
 * retries the parent, which exists, and then the folder again. This walks up to the nearest
 * folder that exists, then makes each missing one in turn, and throws the first error.
 */
export async function makeDir (dir: string, mode = 0o700): Promise<void> {
  const missing: string[] = [];
  const base = await nearestFolder(dir);
  for (let at = path.resolve(dir); at !== base; at = path.dirname(at)) missing.push(at);
  for (const d of missing.reverse()) {
    await fs.mkdir(d, { mode }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST' || !(await fs.stat(d)).isDirectory()) throw err; // another process made it: fine
    });
  }
}

/**
 * The nearest folder of `dir` that exists: itself, or the one its missing folders would be
 * made in (the root at most). A file in the way is ENOTDIR; any other error is thrown.
 */
export async function nearestFolder (dir: string): Promise<string> {
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    const kind = await fs.stat(at).then(s => s.isDirectory() ? 'folder' : 'other', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return 'missing';
      throw err;
    });
    if (kind === 'other') throw notAFolder(at);
    if (kind === 'folder' || path.dirname(at) === at) return at;
  }
}

function notAFolder (at: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOTDIR: not a folder, mkdir '${at}'`), { code: 'ENOTDIR', path: at });
}
