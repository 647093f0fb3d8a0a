import type { FileSummary } from '../../agent/control/protocol';
import type { AgentProcess } from './agent';

/**
 * Polls the agent's file list until `until` holds. Used where the outside world has no event
 * to wait on (download progress inside the agent); bounded, and the step is short.
 */
export async function waitForFile (agent: AgentProcess, name: string, until: (f: FileSummary) => boolean, timeoutMs = 60_000): Promise<FileSummary> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const f = (await agent.rpc<FileSummary[]>('files.list')).find(x => x.name === name);
    if (f !== undefined && until(f)) return f;
    if (performance.now() > deadline) throw new Error(`timed out waiting on ${name}: ${JSON.stringify(f)}`);
    await new Promise(resolve => setTimeout(resolve, 25));
  }
}
