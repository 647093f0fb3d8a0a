import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { hashFile } from '../helpers/agent';
import { waitForFile } from '../helpers/wait';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

/** The agent's open descriptors, and those on temp files deleted from the cache folder. */
async function descriptors (pid: number): Promise<{ count: number; deletedTempFiles: number }> {
  const names = await fs.readdir(`/proc/${pid}/fd`);
  let deletedTempFiles = 0;
  for (const n of names) {
    const target = await fs.readlink(`/proc/${pid}/fd/${n}`).catch(() => '');
    if (/\.part \(deleted\)$/.test(target)) deletedTempFiles++;
  }
  return { count: names.length, deletedTempFiles };
}

/** Another process that opens `file` `n` times, reads a byte through each, and holds them until released. */
async function holdHandles (file: string, n: number): Promise<{ release: () => Promise<void> }> {
  const script = `
    const fs = require('node:fs');
    const fds = [];
    for (let i = 0; i < ${n}; i++) {
      const fd = fs.openSync(process.argv[1], 'r');
      fs.readSync(fd, Buffer.alloc(1), 0, 1, i);
      fds.push(fd);
    }
    process.stdout.write('ready\\n');
    process.stdin.on('end', () => { for (const fd of fds) fs.closeSync(fd); });
    process.stdin.resume();`;
  const child = spawn(process.execPath, ['-e', script, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await once(child.stdout, 'data') as [Buffer];
  assert.equal(line.toString().trim(), 'ready');
  return { release: async () => { child.stdin.end(); await once(child, 'exit'); } };
}

describe('the FUSE binding\'s descriptors of temp files', () => {
  const fx = useOriginAndAgent();

  it('are one per file however many handles are open, and go when the file is removed while still open', async () => {
    const content = fx.origin.add('many.bin', 4 * MiB);
    await fx.agent.add(fx.origin.url('many.bin'));
    assert.equal(await hashFile(fx.agent.path('many.bin')), sha256(content));
    await waitForFile(fx.agent, 'many.bin', f => f.state === 'complete');
    const pid = fx.agent.proc.pid!;
    const before = await descriptors(pid);
    const held = await holdHandles(fx.agent.path('many.bin'), 300);
    try {
      const during = await descriptors(pid);
      // One handle used to cost one descriptor: 300 handles of one file ran toward EMFILE.
      assert.ok(during.count - before.count <= 4, `300 handles of one file cost the agent ${during.count - before.count} descriptors`);
      await fx.agent.rpc('files.remove', { file: 'many.bin' });
      const after = await descriptors(pid);
      assert.equal(after.deletedTempFiles, 0, 'a removed file\'s temp file is still held open (its blocks stay allocated)');
    } finally {
      await held.release();
    }
  });
});
