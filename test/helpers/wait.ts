import type { FileSummary } from '../../agent/control/protocol';
import { AgentClient } from '../../ctl/client';
import type { AgentProcess } from './agent';

/**
 * Waits until `until` holds for a file, woken by the agent's event stream (progress and
 * state changes): subscribes, checks once, then checks again on each event for the file.
 */
export async function waitForFile (
  agent: AgentProcess,
  name: string,
  until: (f: FileSummary) => boolean,
  timeoutMs = 60_000
): Promise<FileSummary> {
  const client = await AgentClient.connect(agent.dirs.socket);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<FileSummary>((resolve, reject) => {
      let last: FileSummary | undefined;
      let checking = false;
      let again = false;
      const check = async (): Promise<void> => {
        if (checking) { again = true; return; }
        checking = true;
        try {
          do {
            again = false;
            last = (await client.call<FileSummary[]>('files.list')).find(x => x.name === name);
            if (last !== undefined && until(last)) return resolve(last);
          } while (again);
        } catch (err) {
          reject(err);
        } finally {
          checking = false;
        }
      };
      timer = setTimeout(() => reject(new Error(`timed out waiting on ${name}: ${JSON.stringify(last)}`)), timeoutMs);
      client.onNotification = (_method, params) => {
        if ((params as { file?: string }).file === name) void check();
      };
      client.onClose(() => reject(new Error('the agent closed the connection')));
      client.call('events.subscribe').then(() => check(), reject);
    });
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
