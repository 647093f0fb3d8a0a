import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AgentProcess, hashFile, timeLs } from './helpers/agent';
import { sha256, TestOrigin } from '../tools/test-origin';

const MiB = 1024 * 1024;

describe('several large files uploaded from the mount at once', () => {
  let origin: TestOrigin;
  let agent: AgentProcess;

  before(async () => {
    origin = await TestOrigin.start();
    agent = await AgentProcess.start();
  });
  after(async () => {
    await agent?.cleanup();
    await origin?.close();
  });

  it('gives every reader the right bytes while ls -l stays quick', async () => {
    const files = [0, 1, 2, 3].map(i => {
      const name = `video-${i}.mp4`;
      return { name, content: origin.add(name, 48 * MiB, { throttle: 24 * MiB }) };
    });
    for (const f of files) await agent.add(origin.url(f.name));

    let reading = true;
    const lsTimes: number[] = [];
    const lsLoop = (async () => {
      while (reading) {
        const ls = await timeLs(agent.mount);
        assert.equal(ls.code, 0);
        assert.equal(ls.text.split('\n').filter(l => l.includes('video-')).length, 4);
        lsTimes.push(ls.ms);
      }
    })();
    try {
      await Promise.all(files.flatMap(f => [0, 1, 2].map(async () => {
        assert.equal(await hashFile(agent.path(f.name), { timeoutMs: 60_000 }), sha256(f.content), f.name);
      })));
    } finally {
      reading = false;
      await lsLoop;
    }
    assert.ok(lsTimes.length >= 5);
    const sorted = [...lsTimes].sort((a, b) => a - b);
    assert.ok(sorted[sorted.length - 1] < 1000, `ls -l took up to ${sorted[sorted.length - 1].toFixed(0)} ms (median ${sorted[sorted.length >> 1].toFixed(0)} ms)`);
  });
});
