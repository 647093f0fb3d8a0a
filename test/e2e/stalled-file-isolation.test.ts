import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WaiterSummary } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { hashFile, run, timeLs, type RunResult } from '../helpers/agent';
import { waitForWaiters } from '../helpers/wait';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;
const READERS = 20;

describe('reads stalled on one file never delay anything else', () => {
  const fx = useOriginAndAgent({ args: ['--read-timeout', '15'] }, async ({ origin, agent }) => {
    origin.add('stalled.bin', 64 * MiB, { stallAt: 1 * MiB });
    await agent.add(origin.url('stalled.bin'));
  });

  it('answers a healthy file, a fresh open() and ls -l within a second while 20 reads wait', async () => {
    // 20 separate processes, buffered reads at different offsets past the stall.
    const offsets = Array.from({ length: READERS }, (_, i) => 4 * MiB + i * 2 * MiB + i * 4096);
    const readers: Array<Promise<RunResult>> = offsets.map(
      o => run(
        'dd',
        [`if=${fx.agent.path('stalled.bin')}`, 'bs=4096', `skip=${o / 4096}`, 'count=1', 'status=none'],
        { timeoutMs: 60_000 }
      )
    );

    // Every reader's read must reach the agent rather than queue in the kernel.
    const covered = (ws: WaiterSummary[]): boolean => offsets.every(o => ws.some(w => w.offset <= o && o < w.offset + w.length));
    const waiters = await waitForWaiters(fx.agent, covered).catch(() => fx.agent.rpc<WaiterSummary[]>('waiters.list'));
    for (const o of offsets) assert.ok(waiters.some(w => w.offset <= o && o < w.offset + w.length), `no waiter covers the reader at ${o}`);
    assert.ok(waiters.length >= READERS, `the agent sees ${waiters.length} waiting reads`);

    const healthy = fx.origin.add('healthy.bin', 2 * MiB);
    await fx.agent.add(fx.origin.url('healthy.bin'));
    const h = performance.now();
    assert.equal(await hashFile(fx.agent.path('healthy.bin'), { timeoutMs: 10_000 }), sha256(healthy));
    const healthyMs = performance.now() - h;

    const opened = await run('dd', [`if=${fx.agent.path('stalled.bin')}`, 'count=0', 'status=none'], { timeoutMs: 10_000 });
    assert.equal(opened.code, 0, opened.stderr);
    const ls = await timeLs(fx.agent.mount);
    assert.equal(ls.code, 0);

    assert.ok(healthyMs < 1000, `healthy file took ${healthyMs.toFixed(0)} ms`);
    assert.ok(opened.ms < 1000, `open() of the stalled file took ${opened.ms.toFixed(0)} ms`);
    assert.ok(ls.ms < 1000, `ls -l took ${ls.ms.toFixed(0)} ms`);

    // And the 20 readers are still waiting (not failed early): then they fail cleanly.
    const stillWaiting = await fx.agent.rpc<WaiterSummary[]>('waiters.list');
    assert.ok(stillWaiting.length >= READERS);
    const results = await Promise.all(readers);
    for (const r of results) assert.match(r.stderr, /Input\/output error/);
  });
});
