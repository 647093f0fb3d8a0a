import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, hashFile, run, type RunResult } from '../helpers/agent';
import { waitForWaiters } from '../helpers/wait';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;
const CONNECTIONS = 4;
const STALLED_FILES = 6;

describe('stalled files never starve a healthy one of connections', () => {
  const fx = useOriginAndAgent({ args: ['--max-connections', String(CONNECTIONS), '--read-timeout', '30'] });

  it('reads a healthy file at once while every connection is held by a stalled download a reader waits on', async t => {
    const stalled = Array.from({ length: STALLED_FILES }, (_, i) => `stalled-${i}.bin`);
    for (const name of stalled) {
      fx.origin.add(name, 8 * MiB, { stallAt: 64 * 1024 });
      await fx.agent.add(fx.origin.url(name));
    }
    const readers: Array<Promise<RunResult>> = stalled.map(name => run(
      'dd', [`if=${fx.agent.path(name)}`, 'bs=4096', `skip=${MiB / 4096}`, 'count=1', 'status=none'], { timeoutMs: 60_000 }
    ));
    await waitForWaiters(fx.agent, ws => new Set(ws.map(w => w.file)).size === STALLED_FILES);
    const status = await fx.agent.rpc<{ connections: { active: number } }>('agent.status');
    assert.equal(status.connections.active, CONNECTIONS, 'every connection is held by a stalled file');

    const content = fx.origin.add('healthy.bin', 16 * MiB);
    await fx.agent.add(fx.origin.url('healthy.bin'));
    const began = performance.now();
    assert.equal(await hashFile(fx.agent.path('healthy.bin'), { timeoutMs: 25_000 }), sha256(content));
    const ms = performance.now() - began;
    t.diagnostic(`healthy 16 MiB file read in ${ms.toFixed(0)} ms with ${STALLED_FILES} stalled files and ${CONNECTIONS} connections`);
    // A stalled download gives way after 2 s without a byte; without that, this waits for the
    // stalled reads' 30 s read-timeout.
    assert.ok(ms < 10_000, `the healthy file took ${ms.toFixed(0)} ms`);

    for (const name of stalled) await fsctl(fx.agent, ['cancel', name]);
    for (const r of await Promise.all(readers)) assert.match(r.stderr, /Input\/output error/);
  });
});
