import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { AgentProcess, makeDirs, run, type AgentDirs } from '../helpers/agent';
import { smallDiskDirs } from '../helpers/small-disk';
import { claimedRanges, tempFile } from '../helpers/state';
import { waitForFile } from '../helpers/wait';
import { TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;

/**
 * Reads a whole file through the mount in a child process: what a browser uploading it would
 * get. The only acceptable outcomes are the origin's bytes with exit 0, or an I/O error.
 */
async function readsOriginBytesOrEio (file: string, content: Buffer): Promise<'bytes' | 'EIO'> {
  const r = await run('cat', [file], { timeoutMs: 120_000 });
  if (r.code === 0) {
    assert.equal(r.stdout.length, content.length, `${file}: exit 0 with ${r.stdout.length} of ${content.length} bytes`);
    assert.ok(r.stdout.equals(content), `${file}: exit 0 but bytes that are not the origin's`);
    return 'bytes';
  }
  assert.match(r.stderr, /Input\/output error|timed out/i, `${file}: failed with something other than EIO: ${r.stderr}`);
  return 'EIO';
}

/** With the agent stopped: every range its database claims is in the temp file with the origin's bytes. */
async function claimsAreOnDisk (dirs: AgentDirs, name: string, content: Buffer): Promise<number> {
  const { id, ranges, synced } = claimedRanges(dirs, name);
  let checked = 0;
  const fh = await fs.open(tempFile(dirs, id), 'r').catch(() => null);
  try {
    for (const [s, e] of [...ranges, ...synced]) {
      assert.ok(fh !== null, `${name}: the database claims ${s}-${e} but there is no temp file`);
      const buf = Buffer.alloc(e - s);
      const { bytesRead } = await fh.read(buf, 0, e - s, s);
      assert.ok(bytesRead === e - s && buf.equals(content.subarray(s, e)), `${name}: claimed ${s}-${e} is not the origin's bytes on disk`);
      checked += e - s;
    }
  } finally {
    await fh?.close();
  }
  return checked;
}

describe('the mount never serves a wrong byte, whatever races the download', () => {
  const cleanup = useCleanups();

  it('prefetch and evict racing the writes: each file reads as the origin\'s bytes, also after kill -9 and a restart', async () => {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const dirs = await makeDirs();
    let agent = await AgentProcess.start({ dirs });
    cleanup(() => agent.cleanup());
    const names = Array.from({ length: 8 }, (_, i) => `race-${i}.bin`);
    const contents = new Map(names.map(n => [n, origin.add(n, 16 * MiB, { throttle: 50_000_000 })]));
    for (const n of names) await agent.add(origin.url(n));

    for (let round = 0; round < 12; round++) {
      await Promise.all(names.map(n => agent.rpc('files.prefetch', { file: n })));
      // Evict while the writes are in flight: once some file has bytes on disk (at 50 MB/s, a
      // write lands every few milliseconds), at a point that moves from round to round.
      const watched = names[round % names.length];
      await waitForFile(agent, watched, f => f.presentBytes >= (round % 4 + 1) * 256 * 1024);
      await Promise.all(names.map(n => agent.rpc('cache.evict', { file: n })));
      // An evict that has returned leaves nothing claimed: a write that was in flight claims nothing when it lands.
      const list = await agent.rpc<Array<{ name: string; presentBytes: number }>>('files.list');
      for (const f of list) assert.equal(f.presentBytes, 0, `round ${round}: ${f.name} claims ${f.presentBytes} bytes after its evict`);
    }
    // A last round left downloading when the agent is killed.
    await Promise.all(names.map(n => agent.rpc('files.prefetch', { file: n })));
    await waitForFile(agent, names[0], f => f.presentBytes >= 2 * MiB);
    const outcomes = await Promise.all(names.map(n => readsOriginBytesOrEio(agent.path(n), contents.get(n)!)));
    assert.ok(outcomes.includes('bytes'), 'a file with nothing in its way reads whole');

    await agent.stop('SIGKILL');
    let checked = 0;
    for (const n of names) checked += await claimsAreOnDisk(dirs, n, contents.get(n)!);
    assert.ok(checked > 0, 'the database claimed something to check');
    agent = await AgentProcess.start({ dirs });
    for (const n of names) assert.equal(await readsOriginBytesOrEio(agent.path(n), contents.get(n)!), 'bytes', `${n} after the restart`);
  });

  it('a cache on a small disk with a larger quota: each file reads as the origin\'s bytes or EIO, also after a restart', async t => {
    const onSmallDisk = await smallDiskDirs(cleanup, t, '40m');
    if (onSmallDisk === null) return;
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const args = ['--cache-max-bytes', '1G', '--read-timeout', '3'];
    let agent = await AgentProcess.start({ dirs: onSmallDisk, args });
    cleanup(() => agent.cleanup());
    const names = ['a.bin', 'b.bin', 'c.bin'];
    const contents = new Map(names.map(n => [n, origin.add(n, 24 * MiB, { throttle: 40_000_000 })]));
    for (const n of names) await agent.add(origin.url(n));

    // 72 MiB read at once into 40: the disk fills while all three write.
    const first = await Promise.all(names.map(n => readsOriginBytesOrEio(agent.path(n), contents.get(n)!)));
    assert.ok(first.includes('EIO'), `the disk was meant to fill: ${first.join(', ')}`);

    await agent.stop('SIGKILL');
    for (const n of names) await claimsAreOnDisk(onSmallDisk, n, contents.get(n)!);
    agent = await AgentProcess.start({ dirs: onSmallDisk, args });
    for (const n of names) await readsOriginBytesOrEio(agent.path(n), contents.get(n)!);
    // With the other files stopped and their bytes evicted, one file fits: it reads whole.
    for (const n of ['b.bin', 'c.bin']) {
      await agent.rpc('files.cancel', { file: n });
      await agent.rpc('cache.evict', { file: n });
    }
    assert.equal(await readsOriginBytesOrEio(agent.path('a.bin'), contents.get('a.bin')!), 'bytes');
  });
});
