import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fsctl, readRange } from '../helpers/agent';
import { waitForFile } from '../helpers/wait';
import { lsWhileRunning, useOriginAndAgent } from '../helpers/fixtures';

const MiB = 1024 * 1024;
const READ_TIMEOUT_S = 3;

describe('a stalled origin fails readers within the read timeout', () => {
  let content: Buffer;
  const fx = useOriginAndAgent({ args: ['--read-timeout', String(READ_TIMEOUT_S)] }, async ({ origin, agent }) => {
    content = origin.add('stalls.bin', 32 * MiB, { stallAt: 8 * MiB });
    await agent.add(origin.url('stalls.bin'));
  });

  it('serves bytes below the stall, fails a read past it with EIO in time, and keeps ls -l fast', async () => {
    const below = await readRange(fx.agent.path('stalls.bin'), 1 * MiB, 2 * MiB, { timeoutMs: 20_000 });
    assert.equal(below.code, 0, below.stderr);
    assert.ok(below.stdout.equals(content.subarray(1 * MiB, 3 * MiB)));

    const ls = lsWhileRunning(fx.agent.mount, text => assert.match(text, /stalls\.bin/));

    const began = performance.now();
    const past = await readRange(fx.agent.path('stalls.bin'), 12 * MiB, 64 * 1024, { timeoutMs: 60_000 });
    const tookS = (performance.now() - began) / 1000;
    const lsTimes = await ls.stop();

    assert.notEqual(past.code, 0, 'the read past the stall must fail');
    assert.match(past.stderr, /Input\/output error/);
    assert.ok(tookS <= READ_TIMEOUT_S + 2, `EIO after ${tookS.toFixed(1)} s; expected within ${READ_TIMEOUT_S + 2} s`);
    assert.ok(lsTimes.length >= 3, 'ls -l ran throughout');
    assert.ok(Math.max(...lsTimes) < 1000, `ls -l took up to ${Math.max(...lsTimes).toFixed(0)} ms while the read waited`);

    // Bytes already on disk stay readable after the stall failed a reader.
    const again = await readRange(fx.agent.path('stalls.bin'), 0, 4096, { timeoutMs: 10_000 });
    assert.ok(again.stdout.equals(content.subarray(0, 4096)));
  });

  it('fsctl ls and info say a stalled file is stalled, since when and why, with no rate or ETA', async () => {
    fx.origin.add('quiet.bin', 32 * MiB, { stallAt: 4 * MiB, throttle: 8 * MiB });
    await fx.agent.add(fx.origin.url('quiet.bin'));
    const reader = readRange(fx.agent.path('quiet.bin'), 12 * MiB, 64 * 1024, { timeoutMs: 60_000 });
    const stalled = await waitForFile(fx.agent, 'quiet.bin', f => f.state === 'stalled', 20_000);
    assert.equal(stalled.bytesPerSecond, 0);
    assert.ok(stalled.stalled !== null && stalled.stalled.since <= Date.now() - 2900, JSON.stringify(stalled.stalled));

    const ls = await fsctl(fx.agent, ['ls']);
    assert.match(ls.text, /quiet\.bin\s*│\s*32\.0 MiB\s*│\s*\d+%\s*│\s*-\s*│\s*stalled \(nothing for \d/);
    const info = await fsctl(fx.agent, ['info', 'quiet.bin']);
    assert.match(info.text, /^state\s+stalled since \d{4}-\d\d-\d\dT[\d:.]+Z \(nothing for [\d.]+ s\): the origin has sent nothing/m);
    assert.match(info.text, /^rate\s+-$/m);
    assert.match(info.text, /^eta\s+-$/m);
    assert.notEqual((await reader).code, 0);
  });
});
