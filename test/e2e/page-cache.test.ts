import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentStatus } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, hashFile, readRange } from '../helpers/agent';
import { waitForDetails, waitForFile } from '../helpers/wait';
import { generateContent, sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('the kernel keeps a file\'s page cache until its content changes', () => {
  const fx = useOriginAndAgent();
  const servedBytes = async (): Promise<number> => (await fx.agent.rpc<AgentStatus>('agent.status')).served.bytes;

  it('a second cat of an unchanged file reads no byte through the mount', async () => {
    const content = fx.origin.add('same.bin', 8 * MiB);
    await fx.agent.add(fx.origin.url('same.bin'));
    assert.equal(await hashFile(fx.agent.path('same.bin')), sha256(content));
    const afterFirst = await servedBytes();
    assert.ok(afterFirst >= content.length, `the first cat went through the agent (${afterFirst} bytes served)`);
    assert.equal(await hashFile(fx.agent.path('same.bin')), sha256(content));
    assert.equal(await servedBytes(), afterFirst, 'the second cat was answered from the page cache');
  });

  it('a new open after the origin changed reads the new content, not pages cached from the old', async () => {
    const before = fx.origin.add('changes.bin', 16 * MiB);
    await fx.agent.add(fx.origin.url('changes.bin'));
    const head = await readRange(fx.agent.path('changes.bin'), 0, MiB);
    assert.ok(head.stdout.equals(before.subarray(0, MiB)), 'the first MiB, as first served, is now in the page cache');
    await waitForFile(fx.agent, 'changes.bin', f => f.presentBytes === f.size);

    // Same size and Last-Modified, new bytes and ETag: only the agent can tell it changed.
    const after = fx.origin.add('changes.bin', generateContent('changes.bin, version 2', 16 * MiB));
    assert.equal((await fsctl(fx.agent, ['evict', 'changes.bin'])).code, 0);
    // A read of bytes the kernel does not hold makes the agent ask the origin, which answers with the new version.
    await readRange(fx.agent.path('changes.bin'), 8 * MiB, MiB);
    const newEtag = `"${sha256(after).slice(0, 16)}"`;
    await waitForDetails(fx.agent, 'changes.bin', f => f.origin.etag === newEtag);

    const again = await readRange(fx.agent.path('changes.bin'), 0, MiB);
    assert.ok(again.stdout.equals(after.subarray(0, MiB)), 'the first MiB is the new version\'s');
    assert.equal(await hashFile(fx.agent.path('changes.bin')), sha256(after));
  });
});
