import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import type { AgentEvent } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { FSCTL_BIN, fsctl, run } from '../helpers/agent';
import { waitForFile } from '../helpers/wait';

const MiB = 1024 * 1024;

describe('fsctl events', () => {
  const fx = useOriginAndAgent({ args: ['--read-timeout', '2'] }, async ({ origin, agent }) => {
    origin.add('stream.bin', 32 * MiB, { throttle: 4 * MiB, stallAt: 3 * MiB });
    await agent.add(origin.url('stream.bin'));
  });

  it('reports progress and the state changes of a download that stalls and is cancelled', async () => {
    const child = spawn(
      process.execPath,
      [FSCTL_BIN, '--socket', fx.agent.dirs.socket, '--json', 'events'],
      { stdio: ['ignore', 'pipe', 'pipe'] }
    );
    const subscribed = once(child.stderr, 'data'); // fsctl says so once the agent confirmed the subscription
    const events: AgentEvent[] = [];
    let buffered = '';
    const waiters: Array<{ until: (e: AgentEvent) => boolean; resolve: () => void }> = [];
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const e = JSON.parse(buffered.slice(0, nl)) as AgentEvent;
        buffered = buffered.slice(nl + 1);
        events.push(e);
        for (const w of [...waiters]) if (w.until(e)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
      }
    });
    const next = (until: (e: AgentEvent) => boolean, what: string): Promise<void> => new Promise((resolve, reject) => {
      if (events.some(until)) return resolve();
      const timer = setTimeout(() => reject(new Error(`no ${what} event; got ${JSON.stringify(events)}`)), 20_000);
      waiters.push({ until, resolve: () => { clearTimeout(timer); resolve(); } });
    });
    assert.match(String((await subscribed)[0]), /watching events/);
    await run('dd', [`if=${fx.agent.path('stream.bin')}`, 'count=0', 'status=none']);
    await next(e => e.type === 'state' && e.state === 'downloading', 'downloading');
    await next(e => e.type === 'progress' && e.presentBytes > 0, 'progress');
    await next(e => e.type === 'state' && e.state === 'stalled', 'stalled');
    assert.equal((await fsctl(fx.agent, ['cancel', 'stream.bin'])).code, 0);
    await next(e => e.type === 'state' && e.state === 'cancelled', 'cancelled');

    const progress = events.filter(e => e.type === 'progress');
    assert.ok(
      progress.every(
        (e, i) => i === 0 || (e as { presentBytes: number }).presentBytes >= (progress[i - 1] as { presentBytes: number }).presentBytes
      ),
      'progress only grows'
    );
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  });

  it('counts waiting reads at most twice a second per file, and numbers a file\'s failed attempts', async () => {
    fx.origin.add('trickle.bin', 3 * MiB, { throttle: MiB });
    fx.origin.add('drops.bin', 8 * MiB, { dropAt: 2 * MiB, dropTimes: 3 });
    await fx.agent.add(fx.origin.url('trickle.bin'));
    await fx.agent.add(fx.origin.url('drops.bin'));
    const args = [FSCTL_BIN, '--socket', fx.agent.dirs.socket, '--json', 'events'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const subscribed = once(child.stderr, 'data');
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => { out += chunk; });
    try {
      await subscribed;
      // dd's small reads each wait for bytes arriving at 1 MiB/s: the count of waiting reads changes many times a second.
      const began = Date.now();
      const dd = await run('dd', [`if=${fx.agent.path('trickle.bin')}`, 'of=/dev/null', 'bs=4096', 'status=none'], { timeoutMs: 30_000 });
      const seconds = (Date.now() - began) / 1000;
      assert.equal(dd.code, 0, dd.stderr);
      // Fetched with no reader: its back-offs (0.25 + 0.5 + 1 s, ±25 %) may add up to more than the 2 s read timeout.
      assert.equal((await fsctl(fx.agent, ['prefetch', 'drops.bin'])).code, 0);
      await waitForFile(fx.agent, 'drops.bin', f => f.state === 'complete', 30_000);
      const events = out.trim().split('\n').map(l => JSON.parse(l) as AgentEvent);
      const waiting = events.filter(e => e.type === 'waiters' && e.file === 'trickle.bin');
      assert.ok(waiting.length >= 1, 'reads were seen waiting');
      assert.ok(waiting.length <= Math.ceil(seconds * 2) + 2, `${waiting.length} waiters events in ${seconds.toFixed(1)} s`);
      const retries = events.filter(e => e.type === 'retry' && e.file === 'drops.bin') as Array<Extract<AgentEvent, { type: 'retry' }>>;
      // The origin drops the first three bodies that reach 2 MiB: one with bytes, then two resumed right there, with none.
      assert.deepEqual(retries.map(r => r.attempt), [1, 2, 3], 'each failed attempt has its own number');
      assert.deepEqual(retries.map(r => r.withoutProgress), [1, 2, 3], JSON.stringify(retries));
    } finally {
      child.kill('SIGINT');
      await once(child, 'exit');
    }
  });
});
