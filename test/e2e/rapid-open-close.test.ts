import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { FileSummary } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { readRange } from '../helpers/agent';

const MiB = 1024 * 1024;

describe('rapid open and close', () => {
  const fx = useOriginAndAgent();

  it('survives 64 processes opening, reading a little and closing the same file, many times', async () => {
    const content = fx.origin.add('busy.bin', 8 * MiB, { throttle: 32 * MiB });
    await fx.agent.add(fx.origin.url('busy.bin'));
    const fdsBefore = (await fs.readdir(`/proc/${fx.agent.proc.pid}/fd`)).length;
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => {
        const offset = ((round * 64 + i) * 65_537) % (content.length - 8192);
        return readRange(fx.agent.path('busy.bin'), offset, 4096, { timeoutMs: 30_000 }).then(r => ({ r, offset }));
      }));
      for (const { r, offset } of results) {
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.equals(content.subarray(offset, offset + 4096)), `bytes at ${offset}`);
      }
    }
    // The kernel sends FUSE's release after close() has returned, so the last ones may still
    // be on their way when the readers have exited; the agent emits no event for a release.
    let file: FileSummary | undefined;
    for (const deadline = performance.now() + 2000; ;) {
      [file] = await fx.agent.rpc<FileSummary[]>('files.list');
      if (file.openHandles === 0 || performance.now() > deadline) break;
      await new Promise(resolve => setTimeout(resolve, 20));
    }
    assert.equal(file.openHandles, 0, 'every handle was released');
    const fdsAfter = (await fs.readdir(`/proc/${fx.agent.proc.pid}/fd`)).length;
    assert.ok(fdsAfter <= fdsBefore + 2, `agent descriptors grew from ${fdsBefore} to ${fdsAfter}`);
  });
});
