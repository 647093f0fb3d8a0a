import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { Methods, type AgentStatus, type FileSummary } from '../agent/control/protocol';
import type { AgentClient } from './client';
import { bytes, duration, rate } from './format';

/** How often the live view asks the agent for fresh numbers. */
const REFRESH_MS = 500;

/** The line above the bars: what `fsctl status` prints first. */
export function statusHeader (s: AgentStatus): string {
  const mounted = s.mounted ? 'mounted' : 'not mounted';
  return `${s.mount} (${mounted}) · cache ${bytes(s.cache.usedBytes)} of ${bytes(s.cache.maxBytes)} · ` +
    `up ${duration(s.uptimeSeconds * 1000)} · ${s.activeDownloads} downloading · ${s.waiters} waiting reads`;
}

/**
 * `fsctl status --watch`: a header line and one progress bar per file, redrawn in place
 * until Ctrl-C, which stops the bars (cursor shown again, line finished) before exiting.
 * When the agent goes away the view ends and says so, rather than leaving its last frame
 * standing; the promise rejects with the connection's error.
 */
export async function watchStatus (client: AgentClient, json: boolean): Promise<void> {
  if (json) {
    for (;;) {
      process.stdout.write(JSON.stringify(await client.call<FileSummary[]>(Methods.listFiles)) + '\n');
      await new Promise(resolve => setTimeout(resolve, REFRESH_MS));
    }
  }
  // Payload keys must not be cli-progress's own tokens ({total}, {value}), which it fills in itself.
  const multibar = new MultiBar({
    format: ' {bar} {percentage}% | {name} | {done} of {size} | {rate} | {state}',
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    autopadding: true,
  }, Presets.shades_classic);
  const header = multibar.create(1, 0, { line: '' }, { format: '{line}' });
  const bars = new Map<string, SingleBar>();
  let stopping = false;
  process.once('SIGINT', () => {
    stopping = true;
    multibar.stop();
    process.exit(0);
  });
  try {
    while (!stopping) {
      const [status, files] = await Promise.all([
        client.call<AgentStatus>(Methods.status),
        client.call<FileSummary[]>(Methods.listFiles),
      ]);
      header.update(0, { line: statusHeader(status) });
      const seen = new Set<string>();
      for (const f of files) {
        seen.add(f.name);
        const payload = { name: f.name, done: bytes(f.presentBytes), size: bytes(f.size), rate: rate(f.bytesPerSecond), state: f.state };
        const bar = bars.get(f.name);
        if (bar === undefined) bars.set(f.name, multibar.create(Math.max(f.size, 1), f.presentBytes, payload));
        else bar.update(f.presentBytes, payload);
      }
      for (const [name, bar] of bars) {
        if (!seen.has(name)) { multibar.remove(bar); bars.delete(name); }
      }
      await new Promise(resolve => setTimeout(resolve, REFRESH_MS));
    }
  } catch (err) {
    multibar.stop();
    process.stderr.write('fsctl: the agent went away (it stopped or crashed); the live view has ended\n');
    throw err;
  }
}
