import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { startOriginAndAgent, useCleanups } from '../helpers/fixtures';
import { AgentProcess, hashFile, readRange, run } from '../helpers/agent';
import { sha256, TestOrigin } from '../../tools/test-origin';
import { smallDiskDirs } from '../helpers/small-disk';
import { waitForFile } from '../helpers/wait';

const MiB = 1024 * 1024;

/** A process that opens a file, reads it whole, and keeps it open until released. */
async function holdOpen (file: string): Promise<{ release: () => Promise<void> }> {
  const child = spawn(
    'sh',
    ['-c', 'exec 3<"$1"; cat <&3 >/dev/null || exit 1; echo done; read _', 'hold', file],
    { stdio: ['pipe', 'pipe', 'inherit'] }
  );
  const [line] = await once(child.stdout, 'data') as [Buffer];
  assert.equal(line.toString().trim(), 'done');
  return { release: async () => { child.stdin.end(); await once(child, 'exit'); } };
}

/** Samples the real disk usage of a folder (du counts allocated blocks) until stopped. */
function sampleDiskUsage (dir: string): { stop: () => Promise<number[]> } {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await run('du', ['-s', '-B1', dir]);
      if (r.code === 0) samples.push(Number(r.stdout.toString().split('\t')[0]));
    }
  })();
  return { stop: async () => { running = false; await loop; return samples; } };
}

describe('the cache quota', () => {
  const cleanup = useCleanups();

  const setup = (args: string[] = []): ReturnType<typeof startOriginAndAgent> => startOriginAndAgent(cleanup, args);

  it('stays under a quota smaller than three files read in turn, and never evicts the open one', async () => {
    const quota = 64 * MiB;
    const { origin, agent } = await setup(['--cache-max-bytes', '64M']);
    const files = ['a.bin', 'b.bin', 'c.bin'].map(name => ({ name, content: origin.add(name, 24 * MiB) }));
    for (const f of files) await agent.add(origin.url(f.name));

    const usage = sampleDiskUsage(agent.dirs.cacheDir);
    cleanup(async () => { await usage.stop(); }); // a failed assertion must not leave the sampler running
    const held = await holdOpen(agent.path('a.bin'));
    try {
      assert.equal(await hashFile(agent.path('b.bin')), sha256(files[1].content));
      assert.equal(await hashFile(agent.path('c.bin')), sha256(files[2].content));
      const list = await agent.rpc<Array<{ name: string; presentBytes: number }>>('files.list');
      const present = Object.fromEntries(list.map(f => [f.name, f.presentBytes]));
      assert.equal(present['a.bin'], 24 * MiB, 'the open file kept all its bytes');
      assert.ok(present['b.bin'] < 24 * MiB, 'the closed, least recently read file was evicted');
      assert.equal(present['c.bin'], 24 * MiB);
    } finally {
      await held.release();
    }
    const samples = await usage.stop();
    assert.ok(samples.length >= 5, `only ${samples.length} samples`);
    const peak = Math.max(...samples);
    assert.ok(peak <= quota, `cache reached ${(peak / MiB).toFixed(1)} MiB over a ${quota / MiB} MiB quota`);
    // Evicted bytes stream again on the next read.
    assert.equal(await hashFile(agent.path('b.bin')), sha256(files[1].content));
  });

  it('pauses the download and fails readers in time when only open files hold the space', async () => {
    const { origin, agent } = await setup(['--cache-max-bytes', '32M', '--read-timeout', '2']);
    origin.add('held.bin', 24 * MiB);
    const waiting = origin.add('waiting.bin', 24 * MiB);
    await agent.add(origin.url('held.bin'));
    await agent.add(origin.url('waiting.bin'));
    const held = await holdOpen(agent.path('held.bin'));
    let released = false;
    try {
      const early = await readRange(agent.path('waiting.bin'), 0, 1 * MiB, { timeoutMs: 20_000 });
      assert.ok(early.stdout.equals(waiting.subarray(0, 1 * MiB)), 'what fits is served');
      // 4 MiB more than the quota leaves: whatever download serves it pauses, and the read fails in time.
      const late = await readRange(agent.path('waiting.bin'), 20 * MiB, 4 * MiB, { timeoutMs: 20_000 });
      assert.match(late.stderr, /Input\/output error/, 'a read beyond the quota fails within its deadline');
      assert.ok(late.ms < 2000 + 3000, `failed after ${late.ms.toFixed(0)} ms`);
      const r = await run('du', ['-s', '-B1', agent.dirs.cacheDir]);
      assert.equal(r.code, 0, r.stderr);
      const used = Number(r.stdout.toString().split('\t')[0]);
      assert.ok(used > 0 && used <= 32 * MiB, `the cache holds ${used} bytes under a 32 MiB quota`);
      await held.release();
      released = true;
      // With the first file closed its bytes may go, and the paused download completes.
      assert.equal(await hashFile(agent.path('waiting.bin'), { timeoutMs: 30_000 }), sha256(waiting));
    } finally {
      if (!released) await held.release();
    }
  });

  it('drops a file\'s bytes when its last handle closes with --evict-on-close, and streams it again', async () => {
    const { origin, agent } = await setup(['--evict-on-close']);
    const content = origin.add('once.bin', 8 * MiB);
    await agent.add(origin.url('once.bin'));
    assert.equal(await hashFile(agent.path('once.bin')), sha256(content));
    await waitForFile(agent, 'once.bin', f => f.presentBytes === 0 && f.openHandles === 0);
    assert.equal((await fs.stat(agent.path('once.bin'))).size, 8 * MiB, 'still listed at full size');
    assert.equal(await hashFile(agent.path('once.bin')), sha256(content));
  });

  it('pauses on a full disk, logs it once, and keeps what it downloaded', async t => {
    const dirs = await smallDiskDirs(cleanup, t, '12m');
    if (dirs === null) return;
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const agent = await AgentProcess.start({ dirs, args: ['--cache-max-bytes', '1G', '--read-timeout', '2'] });
    cleanup(() => agent.cleanup());
    const content = origin.add('huge.bin', 32 * MiB);
    await agent.add(origin.url('huge.bin'));
    const head = await readRange(agent.path('huge.bin'), 0, 4 * MiB, { timeoutMs: 20_000 });
    assert.ok(head.stdout.equals(content.subarray(0, 4 * MiB)));
    const tail = await readRange(agent.path('huge.bin'), 28 * MiB, 4 * MiB, { timeoutMs: 20_000 }); // more than the disk has left
    assert.match(tail.stderr, /Input\/output error/);
    const again = await readRange(agent.path('huge.bin'), 0, 4 * MiB, { timeoutMs: 20_000 });
    assert.ok(again.stdout.equals(content.subarray(0, 4 * MiB)), 'nothing already downloaded was lost');
    const diskFullLines = agent.logLines.filter(l => /disk is full/.test(String(l.msg)));
    assert.equal(diskFullLines.length, 1, 'logged once, not per write or read');
  });
});
