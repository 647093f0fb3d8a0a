import { Methods, type AgentStatus, type FileSummary } from '../agent/control/protocol';
import type { AgentClient } from './client';
import { bytes, duration, percent, rate, shown } from './format';

/** How often the live view asks the agent for fresh numbers. */
const REFRESH_MS = 500;
const BAR_WIDTH = 16;

/** The line above the bars: what `fsctl status` prints first. */
export function statusHeader (s: AgentStatus): string {
  const mounted = s.mounted ? 'mounted' : 'not mounted';
  return `${s.mount} (${mounted}) · cache ${bytes(s.cache.usedBytes)} of ${bytes(s.cache.maxBytes)} · ` +
    `up ${duration(s.uptimeSeconds * 1000)} · ${s.activeDownloads} downloading · ${s.waiters} waiting reads` +
    (s.limits.total === null ? '' : ` · limit ${rate(s.limits.total)}`) +
    (s.limits.background === null ? '' : ` · background limit ${rate(s.limits.background)}`) +
    (s.proxy === null ? '' : ` · proxy ${s.proxy}`);
}

/** Files a user watches for first: moving or waited on, then failed, then the rest. */
function rank (f: FileSummary): number {
  if (f.waiters > 0 || f.state === 'downloading' || f.state === 'stalled' || f.state === 'verifying') return 0;
  return f.state === 'error' ? 1 : 2;
}

/** A file's line: what it is doing first, as the end of a long line is cut off. */
function barLine (f: FileSummary): string {
  const filled = f.size === 0 ? BAR_WIDTH : Math.floor((f.presentBytes / f.size) * BAR_WIDTH);
  const bar = '\u2588'.repeat(filled) + '\u2591'.repeat(BAR_WIDTH - filled);
  const waiting = f.waiters > 0 ? ` · ${f.waiters} waiting` : '';
  return ` ${bar} ${percent(f.presentBytes, f.size).padStart(4)} ${f.state}${waiting} | ${shown(f.name)} | ` +
    `${bytes(f.presentBytes)} of ${bytes(f.size)} | ${rate(f.bytesPerSecond)}`;
}

/** A line cut to `cols` characters, so that no line wraps and the frame's height is its line count. */
function fit (line: string, cols: number): string {
  const chars = [...line];
  return chars.length <= cols ? line : chars.slice(0, Math.max(cols - 1, 0)).join('') + '…';
}

/**
 * One frame of the live view for a terminal of `rows` × `cols`: the header, then a line per
 * file, those that matter first (downloading, stalled, verifying or waited on; then failed;
 * then the rest, by name), and, when not all fit, a line counting the others by state. It is
 * at most `rows - 1` lines (a full screen would scroll the header away) of at most `cols`.
 */
function watchFrame (status: AgentStatus, files: FileSummary[], rows: number, cols: number, folder?: string): string[] {
  const header = (folder !== undefined ? `${files.length} files under ${folder}/ · ` : '') + statusHeader(status);
  const sorted = [...files].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const room = Math.max(rows - 2, 1);
  let shown = sorted;
  let rest: string[] = [];
  if (sorted.length > room) {
    shown = sorted.slice(0, Math.max(room - 1, 0));
    const counts = new Map<string, number>();
    for (const f of sorted.slice(shown.length)) counts.set(f.state, (counts.get(f.state) ?? 0) + 1);
    const byState = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
    rest = [`… ${sorted.length - shown.length} more (${byState}): fsctl ls${folder !== undefined ? ` ${folder}` : ''} lists them all`];
  }
  const empty = files.length === 0 ? [folder !== undefined ? `no files under ${folder}/` : 'no files; add one with: fsctl add URL'] : [];
  return [header, ...shown.map(barLine), ...rest, ...empty].map(l => fit(l, cols));
}

/**
 * `fsctl status --watch [FOLDER]`: the frame above, redrawn in place every half second and at
 * once when the terminal is resized, until Ctrl-C, which leaves the last frame and the
 * cursor as a shell expects them. Not on a terminal, each frame is printed after the last.
 * When the agent goes away the view ends and says so, rather than leaving its last frame
 * standing; the promise rejects with the connection's error.
 */
export async function watchStatus (client: AgentClient, json: boolean, folder?: string): Promise<void> {
  const under = (files: FileSummary[]): FileSummary[] => folder === undefined ? files : files.filter(f => f.name.startsWith(`${folder}/`));
  if (json) {
    for (;;) {
      process.stdout.write(JSON.stringify(under(await client.call<FileSummary[]>(Methods.listFiles))) + '\n');
      await new Promise(resolve => setTimeout(resolve, REFRESH_MS));
    }
  }
  const out = process.stdout;
  const tty = out.isTTY === true;
  let drawnLines = 0;
  let last: { status: AgentStatus; files: FileSummary[] } | null = null;
  const draw = (clearAll: boolean): void => {
    if (last === null) return;
    const frame = watchFrame(last.status, last.files, tty ? out.rows : Infinity, tty ? out.columns : Infinity, folder);
    if (!tty) { out.write(frame.join('\n') + '\n\n'); return; }
    // Back to the frame's first line and clear below, or the whole screen after a resize (the old lines may have wrapped).
    const back = clearAll ? '\x1b[2J\x1b[H' : drawnLines > 0 ? `\r\x1b[${drawnLines}A\x1b[0J` : '';
    out.write(back + frame.join('\n') + '\n');
    drawnLines = frame.length;
  };
  const onResize = (): void => draw(true);
  const restore = (): void => {
    out.off('resize', onResize);
    if (tty) out.write('\x1b[?25h');
  };
  process.once('SIGINT', () => {
    restore();
    process.exit(0);
  });
  if (tty) {
    out.write('\x1b[?25l');
    out.on('resize', onResize);
  }
  try {
    for (;;) {
      const [status, files] = await Promise.all([
        client.call<AgentStatus>(Methods.status),
        client.call<FileSummary[]>(Methods.listFiles),
      ]);
      last = { status, files: under(files) };
      draw(false);
      await new Promise(resolve => setTimeout(resolve, REFRESH_MS));
    }
  } catch (err) {
    restore();
    process.stderr.write('fsctl: the agent went away (it stopped or crashed); the live view has ended\n');
    throw err;
  }
}
