import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FileDetails } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { hashFile } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('a sequential reader of an origin that is slow per connection', () => {
  const fx = useOriginAndAgent();

  it('gets more connections, each over its own part ahead of it, reads byte-exact, and the origin sends each byte once', async () => {
    const size = 48 * MiB;
    // 4 MB/s per connection, as many CDNs and object stores serve: one connection takes 12 s.
    const content = fx.origin.add('slow.bin', size, { throttle: 4_000_000 });
    await fx.agent.add(fx.origin.url('slow.bin'));
    assert.equal(await hashFile(fx.agent.path('slow.bin'), { timeoutMs: 60_000 }), sha256(content));
    assert.ok(fx.origin.maxActive('slow.bin') >= 2, `connections at once: ${fx.origin.maxActive('slow.bin')}`);
    // The origin counts a body until its own send loop ends, a moment after the agent has it
    // all and may start the next: the agent's count is the one the cap holds for.
    const { connections } = await fx.agent.rpc<FileDetails>('files.get', { file: 'slow.bin' });
    assert.ok(connections.peak >= 2 && connections.peak <= 4, `the agent's connections at once: ${connections.peak} (cap 4)`);
    const ratio = fx.origin.bytesSent('slow.bin') / size;
    assert.ok(ratio <= 1.01, `origin bytes / size ${ratio.toFixed(4)}`);
  });
});
