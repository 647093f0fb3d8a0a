import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { run } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

describe('downloads that finish in microseconds', () => {
  const fx = useOriginAndAgent();

  it('wake every reader of many small files read at once', async () => {
    const files = Array.from({ length: 40 }, (_, i) => {
      const name = `small-${i}.bin`;
      return { name, content: fx.origin.add(name, 1 + i * 1637) };
    });
    await Promise.all(files.map(f => fx.agent.add(fx.origin.url(f.name))));
    const reads = files.flatMap(f => Array.from({ length: 4 }, async () => {
      const r = await run('cat', [fx.agent.path(f.name)], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, `${f.name}: ${r.stderr}`);
      assert.equal(sha256(r.stdout), sha256(f.content), f.name);
    }));
    await Promise.all(reads);
  });
});
