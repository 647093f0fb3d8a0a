import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { startOriginAndAgent, useCleanups } from '../helpers/fixtures';
import type { FileSummary } from '../../agent/control/protocol';
import { MAX_WINDOW } from '../../agent/fs/read-ahead';
import { hashFile, readRange } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('random access, shared downloads and read-ahead', () => {
  const cleanup = useCleanups();

  const setup = (args: string[] = []): ReturnType<typeof startOriginAndAgent> => startOriginAndAgent(cleanup, args);

  it('answers seeks at scattered offsets quickly during a throttled download, and fetches each byte once', async () => {
    const { origin, agent } = await setup();
    const size = 64 * MiB;
    const content = origin.add('movie.mkv', size, { throttle: 8 * MiB });
    await agent.add(origin.url('movie.mkv'));
    // Far apart, out of order, as a player seeking: one connection would need 8 s to reach the end.
    const offsets = [60, 12, 44, 2, 31, 52, 23].map(m => m * MiB + 4096 * m);
    for (const offset of offsets) {
      const r = await readRange(agent.path('movie.mkv'), offset, 256 * 1024, { timeoutMs: 20_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(content.subarray(offset, offset + 256 * 1024)), `bytes at ${offset}`);
      assert.ok(r.ms < 1500, `the seek to ${offset} took ${r.ms.toFixed(0)} ms`);
    }
    origin.setFaults('movie.mkv', {});
    assert.equal(await hashFile(agent.path('movie.mkv'), { timeoutMs: 60_000 }), sha256(content));
    const ratio = origin.bytesSent('movie.mkv') / size;
    assert.ok(ratio <= 1.01, `the origin sent ${ratio.toFixed(4)} x the file`);
  });

  it('serves 32 readers of one file with one download', async () => {
    // One connection per file: on a slow machine the download outlasts the two seconds after
    // which a waiting reader may get a second connection (several-connections-per-file tests
    // that); what is tested here is that 32 readers share one download.
    const { origin, agent } = await setup(['--max-connections-per-file', '1']);
    const size = 64 * MiB;
    const content = origin.add('shared.bin', size, { throttle: 32 * MiB });
    await agent.add(origin.url('shared.bin'));
    const hashes = await Promise.all(Array.from({ length: 32 }, () => hashFile(agent.path('shared.bin'), { timeoutMs: 60_000 })));
    assert.ok(hashes.every(h => h === sha256(content)));
    const ratio = origin.bytesSent('shared.bin') / size;
    assert.ok(ratio <= 1.01, `origin bytes / size = ${ratio.toFixed(4)}`);
    assert.equal(origin.maxActive('shared.bin'), 1, 'one connection');
  });

  it('keeps read-ahead within its window for a large file, and drops the connection of a paused reader', async () => {
    const { origin, agent } = await setup(['--fill-files-up-to', '0']);
    const size = 256 * MiB;
    origin.add('huge.iso', size);
    await agent.add(origin.url('huge.iso'));
    // A reader that reads the first 4 MiB sequentially, then pauses with the file open.
    const reader = spawn(
      'sh',
      ['-c', 'exec 3<"$1"; dd bs=128k count=32 <&3 >/dev/null 2>&1; echo done; read _', 'r', agent.path('huge.iso')],
      { stdio: ['pipe', 'pipe', 'inherit'] }
    );
    cleanup(async () => { reader.stdin.end(); if (reader.exitCode === null) await once(reader, 'exit'); });
    await once(reader.stdout, 'data');
    const bound = 4 * MiB + MAX_WINDOW + 2 * MiB; // what was read, the largest window, and the kernel's own read-ahead
    let peak = 0;
    const began = performance.now();
    while (performance.now() - began < 4000) { // sample while a too-eager download would run on
      const [f] = (await agent.rpc<FileSummary[]>('files.list'));
      peak = Math.max(peak, f.presentBytes);
      if (performance.now() - began > 3500 && origin.active('huge.iso') === 0) break;
      await new Promise(resolve => setTimeout(resolve, 100)); // a sampling interval, not a wait for an event
    }
    assert.ok(
      peak <= bound,
      `downloaded ${(peak / MiB).toFixed(1)} MiB ahead of a reader at 4 MiB (bound ${(bound / MiB).toFixed(0)} MiB)`
    );
    assert.ok(peak >= 4 * MiB);
    assert.equal(origin.active('huge.iso'), 0, 'a paused reader holds no connection');
  });

  it('holds the per-file and overall connection limits, and every reader still gets its bytes', async () => {
    const { origin, agent } = await setup(['--max-connections', '5', '--max-connections-per-file', '3', '--fill-files-up-to', '0']);
    const files = ['a', 'b', 'c'].map(n => ({ name: `${n}.bin`, content: origin.add(`${n}.bin`, 128 * MiB, { throttle: 16 * MiB }) }));
    for (const f of files) await agent.add(origin.url(f.name));
    const reads = files.flatMap(f => Array.from({ length: 6 }, async (_, i) => {
      const offset = (i * 21 + 3) * MiB;
      const r = await readRange(agent.path(f.name), offset, 128 * 1024, { timeoutMs: 30_000 });
      assert.equal(r.code, 0, `${f.name} at ${offset}: ${r.stderr}`);
      assert.ok(r.stdout.equals(f.content.subarray(offset, offset + 128 * 1024)));
    }));
    await Promise.all(reads);
    // Counted inside the agent, where a connection ends when its socket is destroyed; the
    // origin sees the close a moment later, so its own count may overlap by a request or two.
    for (const f of files) {
      const info = await agent.rpc<{ connections: { peak: number } }>('files.get', { file: f.name });
      assert.ok(info.connections.peak >= 1 && info.connections.peak <= 3, `${f.name} used ${info.connections.peak} connections at once`);
    }
    const status = await agent.rpc<{ connections: { peak: number; max: number } }>('agent.status');
    assert.equal(status.connections.max, 5);
    assert.ok(status.connections.peak <= 5 && status.connections.peak >= 3, `${status.connections.peak} connections at once in all`);
    process.stdout.write(`# connection limits: agent peak ${status.connections.peak} of 5; origin saw up to ${origin.maxActiveAll}\n`);
  });
});
