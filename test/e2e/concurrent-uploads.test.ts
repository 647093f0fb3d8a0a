import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lsWhileRunning, useOriginAndAgent } from '../helpers/fixtures';
import { hashFile } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('several large files uploaded from the mount at once', () => {
  const fx = useOriginAndAgent();

  it('gives every reader the right bytes while ls -l stays quick', async () => {
    const files = [0, 1, 2, 3].map(i => {
      const name = `video-${i}.mp4`;
      return { name, content: fx.origin.add(name, 48 * MiB, { throttle: 24 * MiB }) };
    });
    for (const f of files) await fx.agent.add(fx.origin.url(f.name));

    const ls = lsWhileRunning(fx.agent.mount, text => assert.equal(text.split('\n').filter(l => l.includes('video-')).length, 4));
    let lsTimes: number[] = [];
    try {
      await Promise.all(files.flatMap(f => [0, 1, 2].map(async () => {
        assert.equal(await hashFile(fx.agent.path(f.name), { timeoutMs: 60_000 }), sha256(f.content), f.name);
      })));
    } finally {
      lsTimes = await ls.stop();
    }
    assert.ok(lsTimes.length >= 5);
    const sorted = [...lsTimes].sort((a, b) => a - b);
    assert.ok(
      sorted[sorted.length - 1] < 1000,
      `ls -l took up to ${sorted[sorted.length - 1].toFixed(0)} ms (median ${sorted[sorted.length >> 1].toFixed(0)} ms)`
    );
  });
});
