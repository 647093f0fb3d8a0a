import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AgentProcess, run } from './helpers/agent';
import { sha256, TestOrigin } from '../tools/test-origin';

describe('downloads that finish in microseconds', () => {
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

  it('wake every reader of many small files read at once', async () => {
    const files = Array.from({ length: 40 }, (_, i) => {
      const name = `small-${i}.bin`;
      return { name, content: origin.add(name, 1 + i * 1637) };
    });
    await Promise.all(files.map(f => agent.add(origin.url(f.name))));
    const reads = files.flatMap(f => Array.from({ length: 4 }, async () => {
      const r = await run('cat', [agent.path(f.name)], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, `${f.name}: ${r.stderr}`);
      assert.equal(sha256(r.stdout), sha256(f.content), f.name);
    }));
    await Promise.all(reads);
  });
});
