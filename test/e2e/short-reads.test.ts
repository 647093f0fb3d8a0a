import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, openOnce, readRange, run } from '../helpers/agent';

const MiB = 1024 * 1024;

/**
 * Reads [from, end) with pread in a loop, as a program that wants every byte does, and
 * reports each call: its byte count, or the errno it failed with.
 */
const PREAD_LOOP = `
import json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off, size, end = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
calls = []
while off < end:
    try:
        n = len(os.pread(fd, size, off))
    except OSError as e:
        calls.append(-e.errno)
        break
    calls.append(n)
    if n == 0:
        break
    off += n
print(json.dumps(calls))
`;

describe('a read never shows the end of a file before its real end', () => {
  const fx = useOriginAndAgent({}, async ({ origin, agent }) => {
    origin.add('part.bin', 8 * MiB, { stallAt: MiB });
    await agent.add(origin.url('part.bin'));
    await openOnce(agent.path('part.bin'));
  });

  it('after a cancel, a read across cached and missing bytes returns the cached part, and the next read fails with EIO', async t => {
    const file = fx.agent.path('part.bin');
    const cached = await readRange(file, 0, MiB, { timeoutMs: 20_000 }); // now in the page cache
    assert.equal(cached.stdout.length, MiB);
    assert.equal((await fsctl(fx.agent, ['cancel', 'part.bin'])).code, 0);
    const args = [file, String(MiB - 100 * 1024), String(256 * 1024), String(8 * MiB)];
    const r = await run('python3', ['-c', PREAD_LOOP, ...args], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    const calls = JSON.parse(r.stdout.toString()) as number[];
    t.diagnostic(`pread calls (bytes, or -errno): ${JSON.stringify(calls)}`);
    const EIO = os.constants.errno.EIO;
    assert.equal(calls[calls.length - 1], -EIO, `the loop ends with EIO: ${JSON.stringify(calls)}`);
    assert.ok(!calls.includes(0), `no read returned 0 (end of file) before the end: ${JSON.stringify(calls)}`);
    const served = calls.filter(n => n > 0).reduce((a, b) => a + b, 0);
    assert.ok(served <= 100 * 1024, `only cached bytes were served (${served})`);
  });
});
