import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentClient } from '../../ctl/client';
import { useOriginAndAgent } from '../helpers/fixtures';
import { hashFile } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('many control clients at once', () => {
  const fx = useOriginAndAgent();

  it('answers 50 clients x 200 requests while a download runs, and the reads are unaffected', async () => {
    const content = fx.origin.add('busy.bin', 48 * MiB, { throttle: 24 * MiB });
    await fx.agent.add(fx.origin.url('busy.bin'));
    const reading = hashFile(fx.agent.path('busy.bin'), { timeoutMs: 60_000 });
    const methods = ['agent.status', 'files.list', 'waiters.list', 'agent.ping'];
    const began = performance.now();
    const answered = await Promise.all(Array.from({ length: 50 }, async (_, c) => {
      const client = await AgentClient.connect(fx.agent.dirs.socket);
      let n = 0;
      try {
        for (let i = 0; i < 200; i += 10) {
          await Promise.all(Array.from({ length: 10 }, (_, k) => client.call(methods[(c + i + k) % methods.length]).then(() => { n++; })));
        }
      } finally {
        client.close();
      }
      return n;
    }));
    const ms = performance.now() - began;
    process.stdout.write(`# 10,000 control requests from 50 clients in ${ms.toFixed(0)} ms during a download\n`);
    assert.equal(answered.reduce((a, b) => a + b, 0), 10_000);
    assert.equal(await reading, sha256(content));
  });
});
