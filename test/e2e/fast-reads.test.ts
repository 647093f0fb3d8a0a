import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentStatus } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, hashFile, run } from '../helpers/agent';
import { waitForDetails, waitForFile } from '../helpers/wait';
import { generateContent, sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;
const BLOCK = 4096;

// Reads of a file whole on disk are answered by the FUSE thread itself (docs/FUSE-BINDING.md):
// O_DIRECT reads bypass the page cache, so each one reaches the mount.
describe('reads of a file whole on disk', () => {
  const fx = useOriginAndAgent();
  const served = async (): Promise<AgentStatus['served']> => (await fx.agent.rpc<AgentStatus>('agent.status')).served;
  const directRead = async (name: string, block: number): Promise<Buffer> => {
    const r = await run('dd', [`if=${fx.agent.path(name)}`, `bs=${BLOCK}`, `skip=${block}`, 'count=1', 'iflag=direct', 'status=none']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  it('are byte-exact with O_DIRECT at random offsets, and counted as served', async () => {
    const size = 16 * MiB + 1000; // a short last block too
    const content = fx.origin.add('whole.bin', size);
    await fx.agent.add(fx.origin.url('whole.bin'));
    assert.equal(await hashFile(fx.agent.path('whole.bin')), sha256(content));
    await waitForFile(fx.agent, 'whole.bin', f => f.state === 'complete');
    const before = await served();
    const blocks = [Math.floor(size / BLOCK), ...Array.from({ length: 40 }, () => Math.floor(Math.random() * (size / BLOCK)))];
    for (const b of blocks) {
      const got = await directRead('whole.bin', b);
      assert.ok(got.equals(content.subarray(b * BLOCK, b * BLOCK + BLOCK)), `block ${b}`);
    }
    const after = await served();
    assert.ok(after.reads - before.reads >= blocks.length, `${after.reads - before.reads} reads counted for ${blocks.length}`);
    assert.equal(after.fastReads - before.fastReads, blocks.length, 'every read answered by the FUSE thread');
    assert.equal(after.bytes - before.bytes, (blocks.length - 1) * BLOCK + (size % BLOCK));
  });

  it('of a file still downloading: its present prefix is answered by the FUSE thread, the rest waits in JavaScript', async () => {
    const size = 64 * MiB;
    const content = fx.origin.add('growing.bin', size, { throttle: 4 * MiB }); // 16 s: still downloading throughout
    await fx.agent.add(fx.origin.url('growing.bin'));
    assert.ok((await directRead('growing.bin', 0)).equals(content.subarray(0, BLOCK))); // its first open starts the download
    await waitForFile(fx.agent, 'growing.bin', f => f.presentBytes >= 6 * MiB);
    // A sequential reader of the first 6 MiB: its read-ahead lets the FUSE thread answer ahead of it.
    const head = await run('dd', [`if=${fx.agent.path('growing.bin')}`, 'bs=128K', 'count=48', 'iflag=direct', 'status=none']);
    assert.ok(head.stdout.equals(content.subarray(0, 6 * MiB)));
    const before = await served();
    const blocks = Array.from({ length: 20 }, () => Math.floor(Math.random() * (6 * MiB / BLOCK)));
    for (const b of blocks) {
      assert.ok((await directRead('growing.bin', b)).equals(content.subarray(b * BLOCK, b * BLOCK + BLOCK)), `block ${b}`);
    }
    const mid = await served();
    assert.equal(mid.fastReads - before.fastReads, blocks.length, 'reads of the present prefix answered by the FUSE thread');
    // Far past the prefix: a read that must wait, which JavaScript answers once its bytes came.
    const far = Math.floor(60 * MiB / BLOCK);
    assert.ok((await directRead('growing.bin', far)).equals(content.subarray(far * BLOCK, far * BLOCK + BLOCK)));
    const after = await served();
    assert.equal(after.fastReads, mid.fastReads, 'a read of missing bytes is not a fast one');
    assert.equal(after.reads - mid.reads, 1);
    const f = await waitForFile(fx.agent, 'growing.bin', () => true);
    assert.notEqual(f.state, 'complete', 'the file was still downloading: the test measured what it meant to');
  });

  it('never answer with bytes the agent dropped: after a new version at the origin, reads see only the new one', async () => {
    const size = 8 * MiB;
    const v1 = fx.origin.add('versions.bin', size);
    await fx.agent.add(fx.origin.url('versions.bin'));
    assert.equal(await hashFile(fx.agent.path('versions.bin')), sha256(v1));
    await waitForFile(fx.agent, 'versions.bin', f => f.state === 'complete');
    assert.ok((await directRead('versions.bin', 5)).equals(v1.subarray(5 * BLOCK, 6 * BLOCK)));

    const v2 = fx.origin.add('versions.bin', generateContent('versions.bin, version 2', size));
    assert.equal((await fsctl(fx.agent, ['evict', 'versions.bin'])).code, 0);
    // A read of bytes no longer on disk makes the agent ask the origin, which answers with the new version.
    const newEtag = `"${sha256(v2).slice(0, 16)}"`;
    const ddArgs = [`if=${fx.agent.path('versions.bin')}`, `bs=${BLOCK}`, 'skip=7', 'count=1', 'iflag=direct', 'status=none'];
    const first = await run('dd', ddArgs);
    // Exactly version 2's bytes, or EIO: never version 1's, zeros, a short read or anything else.
    const block7 = v2.subarray(7 * BLOCK, 8 * BLOCK);
    if (first.code === 0) assert.ok(first.stdout.equals(block7), 'a read after the evict is version 2\'s bytes');
    else assert.match(first.stderr, /Input\/output error/);
    await waitForDetails(fx.agent, 'versions.bin', f => f.origin.etag === newEtag); // woken by the `changed` event
    assert.equal(await hashFile(fx.agent.path('versions.bin'), { timeoutMs: 60_000 }), sha256(v2));
    await waitForFile(fx.agent, 'versions.bin', f => f.state === 'complete');
    for (const b of [0, 5, 1000, 2047]) {
      assert.ok((await directRead('versions.bin', b)).equals(v2.subarray(b * BLOCK, b * BLOCK + BLOCK)), `block ${b} is version 2's`);
    }
  });
});
