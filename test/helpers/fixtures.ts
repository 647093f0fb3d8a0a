import { after, before } from 'node:test';
import { TestOrigin } from '../../tools/test-origin';
import { AgentProcess, timeLs, type StartOptions } from './agent';

export interface OriginAndAgent {
  origin: TestOrigin;
  agent: AgentProcess;
}

/**
 * An origin and an agent for the enclosing describe block: started before its tests,
 * stopped and unmounted after them whatever happened. `setup` runs once both are up.
 */
export function useOriginAndAgent (opts: StartOptions = {}, setup?: (f: OriginAndAgent) => Promise<void>): OriginAndAgent {
  const f = {} as OriginAndAgent;
  before(async () => {
    f.origin = await TestOrigin.start();
    f.agent = await AgentProcess.start(opts);
    await setup?.(f);
  });
  after(async () => {
    await f.agent?.cleanup();
    await f.origin?.close();
  });
  return f;
}

/** Registers clean-ups to run, newest first, after the enclosing describe block. */
export function useCleanups (): (fn: () => Promise<void>) => void {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => { for (const c of cleanups.reverse()) await c(); });
  return fn => { cleanups.push(fn); };
}

/** An origin and an agent started inside one test, both handed to `cleanup` to stop afterwards. */
export async function startOriginAndAgent (cleanup: (fn: () => Promise<void>) => void, args: string[] = []): Promise<OriginAndAgent> {
  const origin = await TestOrigin.start();
  cleanup(() => origin.close());
  const agent = await AgentProcess.start({ args });
  cleanup(() => agent.cleanup());
  return { origin, agent };
}

/** Runs `ls -l` of the mount over and over (each in a child process) until stopped; resolves with each run's milliseconds. */
export function lsWhileRunning (mount: string, check?: (text: string) => void): { stop: () => Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const ls = await timeLs(mount);
      if (ls.code !== 0) throw new Error(`ls -l ${mount} failed`);
      check?.(ls.text);
      times.push(ls.ms);
    }
  })();
  return { stop: async () => { running = false; await loop; return times; } };
}
