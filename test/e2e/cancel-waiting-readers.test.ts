import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WaiterSummary } from '../../agent/control/protocol';
import { lsWhileRunning, useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, hashFile, run, type RunResult } from '../helpers/agent';
import { waitForWaiters } from '../helpers/wait';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('fsctl waiters and fsctl cancel with readers stuck on a stalled origin', () => {
  let content: Buffer;
  const fx = useOriginAndAgent({ args: ['--read-timeout', '60'] }, async ({ origin, agent }) => {
    content = origin.add('stuck.bin', 64 * MiB, { stallAt: 1 * MiB });
    await agent.add(origin.url('stuck.bin'));
  });

  it('shows each waiting read, fails all 20 within a second on cancel, and resumes byte-exact', async () => {
    const offsets = Array.from({ length: 20 }, (_, i) => 3 * MiB + i * 3 * MiB + i * 8192);
    const pidAt = new Map<number, number>();
    const readers: Array<Promise<RunResult>> = offsets.map(o => run(
      'dd', [`if=${fx.agent.path('stuck.bin')}`, 'bs=4096', `skip=${o / 4096}`, 'count=1', 'status=none'],
      { timeoutMs: 60_000, onSpawn: pid => pidAt.set(o, pid) }
    ));
    const covered = (ws: WaiterSummary[]): boolean => offsets.every(o => ws.some(w => w.offset <= o && o < w.offset + w.length));
    let waiters = await waitForWaiters(fx.agent, covered).catch(() => fx.agent.rpc<WaiterSummary[]>('waiters.list'));
    const missing = offsets.filter(o => !waiters.some(w => w.offset <= o && o < w.offset + w.length));
    assert.deepEqual(missing, [], `readers not in the agent's waiters (it lists ${waiters.map(w => w.offset).join(', ')})`);
    waiters = JSON.parse((await fsctl(fx.agent, ['--json', 'waiters'])).text) as WaiterSummary[];
    assert.ok(covered(waiters), 'fsctl waiters --json shows every reader');
    assert.ok(waiters.length >= 20);
    for (const w of waiters) {
      assert.equal(w.file, 'stuck.bin');
      assert.ok(w.length > 0 && w.waitedMs >= 0 && w.deadlineInMs > 0);
    }
    // Each reader is named by its own pid (the kernel's read-ahead may add waiters of its own, unnamed or not).
    for (const o of offsets) {
      const mine = waiters.filter(w => w.offset <= o && o < w.offset + w.length);
      assert.ok(mine.some(w => w.pid === pidAt.get(o)), `the read at ${o} is listed with its reader's pid ${pidAt.get(o)}`);
    }
    const human = await fsctl(fx.agent, ['waiters']);
    for (const o of offsets) {
      const w = waiters.find(x => x.offset <= o && o < x.offset + x.length)!;
      assert.match(human.text, new RegExp(`stuck\\.bin\\s*│\\s*${w.offset}\\s*│\\s*${w.length}\\s*│\\s*\\d`), `row for offset ${w.offset}`);
    }

    const ls = lsWhileRunning(fx.agent.mount);
    const began = performance.now();
    const cancel = await fsctl(fx.agent, ['cancel', 'stuck.bin']);
    assert.equal(cancel.code, 0, cancel.stderr);
    const results = await Promise.all(readers);
    const tookMs = performance.now() - began;
    const lsTimes = await ls.stop();

    for (const r of results) assert.match(r.stderr, /Input\/output error/);
    assert.ok(tookMs < 1000, `readers answered ${tookMs.toFixed(0)} ms after the cancel`);
    assert.deepEqual(JSON.parse((await fsctl(fx.agent, ['--json', 'waiters'])).text), []);
    assert.ok(lsTimes.length > 0 && Math.max(...lsTimes) < 1000, 'ls -l answered throughout');

    fx.origin.setFaults('stuck.bin', {});
    assert.equal((await fsctl(fx.agent, ['resume', 'stuck.bin'])).code, 0);
    assert.equal(await hashFile(fx.agent.path('stuck.bin'), { timeoutMs: 60_000 }), sha256(content));
  });
});
