import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentProcess, fsctl, hashFile, makeDirs, openOnce, readRange } from '../helpers/agent';
import { useCleanups } from '../helpers/fixtures';
import { waitForFile } from '../helpers/wait';
import { sha256, TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('sharing the network: --bwlimit, background downloads that yield, pause', () => {
  const cleanup = useCleanups();

  type Dirs = Awaited<ReturnType<typeof makeDirs>>;
  async function setup (args: string[] = [], dirs?: Dirs): Promise<{ origin: TestOrigin; agent: AgentProcess }> {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const agent = await AgentProcess.start({ args, dirs });
    cleanup(() => agent.cleanup());
    return { origin, agent };
  }

  /** Seconds a program takes to read the whole file, and whether it read the origin's bytes. */
  async function timedHash (agent: AgentProcess, name: string, content: Buffer): Promise<number> {
    const began = performance.now();
    assert.equal(await hashFile(agent.path(name), { timeoutMs: 120_000 }), sha256(content));
    return (performance.now() - began) / 1000;
  }

  it('fsctl limit 8M: 64 MiB takes 8 s within 10 %; off lifts it at once; status shows the cap', async () => {
    const { origin, agent } = await setup();
    const capped = origin.add('capped.bin', 64 * MiB);
    const free = origin.add('free.bin', 64 * MiB);
    await agent.add(origin.url('capped.bin'));
    await agent.add(origin.url('free.bin'));
    const set = await fsctl(agent, ['limit', '8M']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.text, /^every download: 8M \(8\.0 MiB\/s\)$/m);
    assert.match((await fsctl(agent, ['status'])).text, /· limit 8\.0 MiB\/s/);
    const seconds = await timedHash(agent, 'capped.bin', capped);
    process.stdout.write(`# 64 MiB under --bwlimit 8M: ${seconds.toFixed(2)} s (8.00 expected)\n`);
    assert.ok(Math.abs(seconds - 8) <= 0.8, `${seconds.toFixed(2)} s under an 8 MiB/s cap`);
    assert.equal((await fsctl(agent, ['limit', 'off'])).code, 0);
    const after = await timedHash(agent, 'free.bin', free);
    assert.ok(after < 4, `${after.toFixed(2)} s once the cap is off`);
  });

  it('--background-bwlimit: a fill crawls while a program reads another file at full speed', async () => {
    const { origin, agent } = await setup(['--background-bwlimit', '1M']);
    origin.add('background.bin', 128 * MiB);
    const wanted = origin.add('wanted.bin', 64 * MiB);
    await agent.add(origin.url('background.bin'));
    await agent.add(origin.url('wanted.bin'));
    const prefetch = await fsctl(agent, ['prefetch', 'background.bin']);
    assert.equal(prefetch.code, 0, prefetch.stderr);
    const seconds = await timedHash(agent, 'wanted.bin', wanted);
    assert.ok(seconds < 5, `a reader took ${seconds.toFixed(2)} s for 64 MiB beside a capped fill`);
    const bg = JSON.parse((await fsctl(agent, ['--json', 'info', 'background.bin'])).text) as { presentBytes: number };
    // 1 MiB/s since the prefetch, plus one burst: far from the 128 MiB an uncapped fill would have by now.
    const had = `the fill has ${(bg.presentBytes / MiB).toFixed(1)} MiB after ${seconds.toFixed(1)} s`;
    assert.ok(bg.presentBytes < (seconds + 2) * MiB + 512 * 1024, had);
  });

  it('a paused file downloads only what a program reads, across a restart, until resumed', async () => {
    const dirs = await makeDirs();
    const { origin, agent } = await setup([], dirs);
    const content = origin.add('paused.bin', 96 * MiB);
    await agent.add(origin.url('paused.bin'));
    const pause = await fsctl(agent, ['pause', 'paused.bin']);
    assert.equal(pause.code, 0, pause.stderr);
    assert.match((await fsctl(agent, ['ls'])).text, /paused\.bin.*paused \(reads still served\)/);
    const prefetch = await fsctl(agent, ['prefetch', 'paused.bin']);
    assert.equal(prefetch.code, 1);
    assert.match(prefetch.stderr, /paused\.bin is paused; fsctl resume paused\.bin first/);

    // A program reads a range: it gets the origin's bytes, and the file is not filled behind it.
    const part = await readRange(agent.path('paused.bin'), 40 * MiB, MiB, { timeoutMs: 20_000 });
    assert.ok(part.stdout.equals(content.subarray(40 * MiB, 41 * MiB)), part.stderr);
    await openOnce(agent.path('paused.bin')); // an open alone starts no fill either
    // The read's download stops at the reader's window (and drops its connection 3 s later).
    await waitForFile(agent, 'paused.bin', f => f.state !== 'downloading', 10_000);
    const info = JSON.parse((await fsctl(agent, ['--json', 'info', 'paused.bin'])).text) as { presentBytes: number; paused: boolean };
    assert.ok(info.paused && info.presentBytes < 16 * MiB, `${(info.presentBytes / MiB).toFixed(1)} MiB of 96 on disk while paused`);
    // What the origin sent also counts what sat in the sockets' buffers (several MiB each way) when the download stopped.
    assert.ok(origin.bytesSent('paused.bin') < 48 * MiB, `the origin sent ${(origin.bytesSent('paused.bin') / MiB).toFixed(1)} MiB of 96`);

    // A file never opened: ending its pause starts nothing (nothing was asked of it).
    origin.add('untouched.bin', 8 * MiB);
    await agent.add(origin.url('untouched.bin'));
    assert.equal((await fsctl(agent, ['pause', 'untouched.bin'])).code, 0);
    assert.equal((await fsctl(agent, ['resume', 'untouched.bin'])).code, 0);
    const untouched = JSON.parse((await fsctl(agent, ['--json', 'info', 'untouched.bin'])).text) as { paused: boolean; state: string };
    assert.equal(untouched.paused, false);
    assert.equal(untouched.state, 'idle');

    await agent.stop('SIGTERM');
    const again = await AgentProcess.start({ dirs });
    cleanup(() => again.cleanup());
    const kept = JSON.parse((await fsctl(again, ['--json', 'info', 'paused.bin'])).text) as { paused: boolean };
    assert.equal(kept.paused, true, 'the pause survives a restart');

    const resume = await fsctl(again, ['resume', '--all']);
    assert.equal(resume.code, 0, resume.stderr);
    assert.match(resume.text, /^resumed 1 file\(s\)$/m);
    await openOnce(again.path('paused.bin'));
    await waitForFile(again, 'paused.bin', f => f.state === 'complete', 30_000);
    assert.equal(await hashFile(again.path('paused.bin')), sha256(content));
  });
});
