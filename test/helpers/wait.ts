import { watch } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { AgentEvent, FileDetails, FileSummary, WaiterSummary } from '../../agent/control/protocol';
import { AgentClient } from '../../ctl/client';
import type { AgentProcess } from './agent';

/**
 * Waits, woken by the agent's event stream, until `check` finds what it looks for:
 * subscribes, checks once, then checks again on each event `relevant` picks out (one check
 * at a time; events during a check trigger one more). `check` answers undefined to go on.
 */
async function waitOnEvents<T> (
  agent: AgentProcess,
  relevant: (e: AgentEvent) => boolean,
  check: (client: AgentClient) => Promise<T | undefined>,
  timeoutMs: number,
  what: () => string
): Promise<T> {
  const client = await AgentClient.connect(agent.dirs.socket);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<T>((resolve, reject) => {
      let checking = false;
      let again = false;
      const run = async (): Promise<void> => {
        if (checking) { again = true; return; }
        checking = true;
        try {
          do {
            again = false;
            const found = await check(client);
            if (found !== undefined) return resolve(found);
          } while (again);
        } catch (err) {
          reject(err);
        } finally {
          checking = false;
        }
      };
      timer = setTimeout(() => reject(new Error(`timed out waiting on ${what()}`)), timeoutMs);
      client.onNotification = (_method, params) => { if (relevant(params as AgentEvent)) void run(); };
      client.onClose(() => reject(new Error('the agent closed the connection')));
      client.call('events.subscribe').then(() => run(), reject);
    });
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

/** Waits until `until` holds for a file, woken by its progress and state events. */
export function waitForFile (
  agent: AgentProcess, name: string, until: (f: FileSummary) => boolean, timeoutMs = 60_000
): Promise<FileSummary> {
  let last: FileSummary | undefined;
  return waitOnEvents(agent, e => e.file === name, async client => {
    last = (await client.call<FileSummary[]>('files.list')).find(x => x.name === name);
    return last !== undefined && until(last) ? last : undefined;
  }, timeoutMs, () => `${name}: ${JSON.stringify(last)}`);
}

/** Waits until `until` holds for a file's details (`fsctl info`), woken by its events. */
export function waitForDetails (
  agent: AgentProcess, name: string, until: (f: FileDetails) => boolean, timeoutMs = 60_000
): Promise<FileDetails> {
  let last: FileDetails | undefined;
  return waitOnEvents(agent, e => e.file === name, async client => {
    last = await client.call<FileDetails>('files.get', { file: name });
    return until(last) ? last : undefined;
  }, timeoutMs, () => `${name}: ${JSON.stringify(last)}`);
}

/**
 * Waits until the agent's waiting reads satisfy `until`, woken each time a file's count of
 * waiting reads changes: reads reach the agent in the kernel's own time.
 */
export function waitForWaiters (
  agent: AgentProcess, until: (ws: WaiterSummary[]) => boolean, timeoutMs = 20_000
): Promise<WaiterSummary[]> {
  let last: WaiterSummary[] = [];
  return waitOnEvents(agent, e => e.type === 'waiters', async client => {
    last = await client.call<WaiterSummary[]>('waiters.list');
    return until(last) ? last : undefined;
  }, timeoutMs, () => `waiting reads; the agent lists ${JSON.stringify(last.map(w => [w.file, w.offset, w.length]))}`);
}

/** Waits until `name` has left the mount, woken by its events (checked once subscribed: no removal can slip by). */
export async function waitForRemoval (agent: AgentProcess, name: string, timeoutMs = 20_000): Promise<void> {
  await waitOnEvents(agent, e => e.file === name, async client => {
    const files = await client.call<FileSummary[]>('files.list');
    return files.some(f => f.name === name) ? undefined : true;
  }, timeoutMs, () => `${name} to leave the mount`);
}

/**
 * Waits for the next event `match` picks out. Only events after its subscription count:
 * start it well before what causes the event, or wait on state (waitForFile, waitForRemoval).
 */
export function waitForEvent (agent: AgentProcess, match: (e: AgentEvent) => boolean, timeoutMs = 20_000): Promise<AgentEvent> {
  let seen: AgentEvent | undefined;
  const relevant = (e: AgentEvent): boolean => {
    if (match(e)) seen = e;
    return seen !== undefined;
  };
  return waitOnEvents(agent, relevant, () => Promise.resolve(seen), timeoutMs, () => 'a matching event');
}

/**
 * Waits until the text of `file` (written by another process) satisfies `until`, woken by
 * the folder's change events; a file that does not exist yet reads as "".
 */
export function waitForText (file: string, until: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let done = false;
    let checking = false;
    let again = false;
    // Watching starts before the first read, so no write can fall in between.
    const watcher = watch(path.dirname(file), (_event, name) => { if (name === path.basename(file)) void check(); });
    const finish = (err: Error | null, text = ''): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watcher.close();
      if (err !== null) reject(err); else resolve(text);
    };
    const timer = setTimeout(() => {
      void fs.readFile(file, 'utf8').catch(() => '').then(text =>
        finish(new Error(`timed out waiting on the text of ${file}; it holds: ${JSON.stringify(text)}`)));
    }, timeoutMs);
    const check = async (): Promise<void> => {
      if (checking) { again = true; return; }
      checking = true;
      do {
        again = false;
        const text = await fs.readFile(file, 'utf8').catch(() => '');
        if (until(text)) finish(null, text);
      } while (again && !done);
      checking = false;
    };
    void check();
  });
}
