import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { AgentProcess, fsctl, makeDirs, run, timeLs, type RunResult } from '../helpers/agent';
import { waitForWaiters } from '../helpers/wait';
import { isMounted, statError } from '../helpers/mounts';
import { TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;

/** Log lines at error level or above (pino: error 50, fatal 60). */
const errorsIn = (agent: AgentProcess): unknown[] => agent.logLines.filter(l => Number(l.level) >= 50);

describe('stopping the agent', () => {
  const cleanup = useCleanups();

  /** An agent with `count` readers of one stalled file waiting in it. */
  async function agentWithStuckReaders (count: number): Promise<{ agent: AgentProcess; readers: Array<Promise<RunResult>> }> {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    origin.add('stuck.bin', 16 * MiB, { stallAt: 512 * 1024 });
    const agent = await AgentProcess.start();
    cleanup(() => agent.cleanup());
    await agent.add(origin.url('stuck.bin'));
    const readers = Array.from({ length: count }, (_, i) => run(
      'dd', [`if=${agent.path('stuck.bin')}`, 'bs=65536', `skip=${(2 + 3 * i) * 16}`, 'count=1', 'status=none'], { timeoutMs: 30_000 }
    ));
    await waitForWaiters(agent, ws => ws.length >= count);
    return { agent, readers };
  }

  it('on SIGTERM fails waiting readers with EIO promptly, unmounts and exits 0', async () => {
    const { agent, readers } = await agentWithStuckReaders(3);
    const began = performance.now();
    const code = await agent.stop('SIGTERM');
    const results = await Promise.all(readers);
    const tookMs = performance.now() - began;

    assert.equal(code, 0);
    for (const r of results) {
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Input\/output error/, 'readers see EIO, not a dead mount');
    }
    assert.ok(tookMs < 5000, `readers answered ${tookMs.toFixed(0)} ms after SIGTERM`);
    assert.equal(await isMounted(agent.mount), false, 'the mount is gone');
    assert.deepEqual(errorsIn(agent), [], 'nothing went wrong on the way out');
  });

  it('on fsctl stop with readers waiting, answers them, logs no error and exits 0', async () => {
    const { agent, readers } = await agentWithStuckReaders(4);
    assert.equal((await fsctl(agent, ['stop'])).code, 0);
    assert.equal(await agent.exited, 0);
    for (const r of await Promise.all(readers)) assert.match(r.stderr, /Input\/output error/);
    assert.deepEqual(errorsIn(agent), [], 'nothing went wrong on the way out');
    assert.doesNotMatch(agent.stderr, /uncaught|database connection is not open/);
  });

  it('recovers the stale mount a kill -9 left behind at the next start', async () => {
    const dirs = await makeDirs();
    const first = await AgentProcess.start({ dirs });
    cleanup(() => first.cleanup());
    await first.stop('SIGKILL');
    assert.match(String(await statError(dirs.mount)), /ENOTCONN|ECONNABORTED/, 'kill -9 leaves a stale mount');

    const second = await AgentProcess.start({ dirs });
    cleanup(() => second.cleanup());
    assert.equal(await statError(dirs.mount), null);
    const ls = await timeLs(dirs.mount);
    assert.equal(ls.code, 0);
    assert.ok(second.logLines.some(l => /stale mount/.test(String(l.msg))), 'the agent says it cleared a stale mount');
  });

  it('refuses to start a second agent on the same socket', async () => {
    const dirs = await makeDirs();
    const first = await AgentProcess.start({ dirs });
    cleanup(() => first.cleanup());
    const other = await makeDirs();
    const err = await AgentProcess.start({ dirs: { ...other, socket: dirs.socket } }).then(() => null, (e: Error) => e);
    const stderr = /before ready:\n([\s\S]*)$/.exec(String(err?.message))?.[1] ?? '';
    assert.match(stderr, /^fusestream-agent: cannot start: another fusestream agent is already running on .*\n$/, 'one line, no log line');
  });
});
