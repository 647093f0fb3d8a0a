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
    const before = await descriptors(fx.agent.proc.pid!);
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
    // Files: the temp file's descriptor and the binding's copy of it. Sockets: connections to
    // the origin that finished their claims and wait, idle, for the next request (undici's
    // keep-alive), at most one per connection a file may use.
    const after = await descriptors(fx.agent.proc.pid!);
    assert.ok(after.files <= before.files + 2, `agent file descriptors grew from ${before.files} to ${after.files}`);
    assert.ok(after.sockets <= before.sockets + 4, `agent sockets grew from ${before.sockets} to ${after.sockets}`);
  });
});

/** A process's open descriptors: sockets, and the rest (files, devices, pipes). */
async function descriptors (pid: number): Promise<{ files: number; sockets: number }> {
  const dir = `/proc/${pid}/fd`;
  let sockets = 0;
  let files = 0;
  for (const fd of await fs.readdir(dir)) {
    const target = await fs.readlink(`${dir}/${fd}`).catch(() => null); // closed meanwhile
    if (target === null) continue;
    if (target.startsWith('socket:')) sockets++; else files++;
  }
  return { files, sockets };
}
