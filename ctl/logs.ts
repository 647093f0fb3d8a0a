import fs from 'node:fs/promises';
import path from 'node:path';
import { prettyFactory } from 'pino-pretty';
import { colorEnabled } from './format';

/** How often `fsctl logs -f` looks for new lines. */
const FOLLOW_POLL_MS = 300;

/** The agent's log files, oldest first (pino-roll numbers them agent.1.log, agent.2.log, …). */
async function logFiles (dir: string): Promise<string[]> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter(n => /^agent\.\d+\.log$/.test(n));
  return names.sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1])).map(n => path.join(dir, n));
}

/** Prints the last `lines` log lines and, with `follow`, new ones as they come (across rotations). */
export async function showLogs (dir: string, lines: number, follow: boolean, raw: boolean): Promise<void> {
  const pretty = !raw && process.stdout.isTTY === true
    ? prettyFactory({ colorize: colorEnabled(), translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname' })
    : null;
  const print = (line: string): void => {
    if (line === '') return;
    if (pretty === null) { process.stdout.write(line + '\n'); return; }
    try { process.stdout.write(pretty(JSON.parse(line) as object)); } catch { process.stdout.write(line + '\n'); }
  };
  const files = await logFiles(dir);
  if (files.length === 0 && !follow) throw new Error(`no log files in ${dir}`);
  const tail: string[] = [];
  for (let i = files.length - 1; i >= 0 && tail.length < lines; i--) {
    const text = await fs.readFile(files[i], 'utf8');
    const fileLines = text.split('\n').filter(l => l !== '');
    tail.unshift(...fileLines.slice(Math.max(0, fileLines.length - (lines - tail.length))));
  }
  tail.forEach(print);
  if (!follow) return;

  let current = files[files.length - 1] ?? null;
  let offset = current !== null ? (await fs.stat(current)).size : 0;
  let partial = '';
  for (;;) {
    await new Promise(resolve => setTimeout(resolve, FOLLOW_POLL_MS));
    const latest = (await logFiles(dir)).pop() ?? null;
    if (current !== null) {
      const size = (await fs.stat(current).catch(() => null))?.size ?? 0;
      if (size > offset) {
        const fh = await fs.open(current, 'r');
        const buf = Buffer.alloc(size - offset);
        await fh.read(buf, 0, buf.length, offset);
        await fh.close();
        offset = size;
        const text = partial + buf.toString('utf8');
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        parts.forEach(print);
      }
    }
    if (latest !== null && latest !== current) {
      // Rotated: the rest of the old file was read above; start the new one from its beginning.
      current = latest;
      offset = 0;
      partial = '';
    }
  }
}
