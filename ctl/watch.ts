import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { Methods, type FileSummary } from '../agent/control/protocol';
import type { AgentClient } from './client';
import { bytes, rate } from './format';

/** How often the live view asks the agent for fresh numbers. */
const REFRESH_MS = 500;

/**
 * `fsctl status --watch`: one progress bar per file, redrawn in place until Ctrl-C, which
 * stops the bars (cursor shown again, line finished) before exiting.
 */
export async function watchStatus (client: AgentClient, json: boolean): Promise<void> {
  if (json) {
    for (;;) {
      process.stdout.write(JSON.stringify(await client.call<FileSummary[]>(Methods.listFiles)) + '\n');
      await new Promise(resolve => setTimeout(resolve, REFRESH_MS));
    }
  }
  const multibar = new MultiBar({
    format: ' {bar} {percentage}% | {name} | {done} of {total} | {rate} | {state}',
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    autopadding: true,
  }, Presets.shades_classic);
  const bars = new Map<string, SingleBar>();
  let stopping = false;
  process.once('SIGINT', () => {
    stopping = true;
    multibar.stop();
    process.exit(0);
  });
  while (!stopping) {
    const files = await client.call<FileSummary[]>(Methods.listFiles);
    const seen = new Set<string>();
    for (const f of files) {
      seen.add(f.name);
      const payload = { name: f.name, done: bytes(f.presentBytes), total: bytes(f.size), rate: rate(f.bytesPerSecond), state: f.state };
      const bar = bars.get(f.name);
      if (bar === undefined) bars.set(f.name, multibar.create(Math.max(f.size, 1), f.presentBytes, payload));
      else bar.update(f.presentBytes, payload);
    }
    for (const [name, bar] of bars) {
      if (!seen.has(name)) { multibar.remove(bar); bars.delete(name); }
    }
    await new Promise(resolve => setTimeout(resolve, REFRESH_MS));
  }
}
