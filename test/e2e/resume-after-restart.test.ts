import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { AgentProcess, hashFile, makeDirs, openOnce } from '../helpers/agent';
import { sha256, TestOrigin } from '../../tools/test-origin';
import { claimedRanges, pretendReboot, tempFile } from '../helpers/state';
import { waitForFile } from '../helpers/wait';

const MiB = 1024 * 1024;

describe('partial downloads resume after a restart', () => {
  const cleanup = useCleanups();

  async function setup (): Promise<{ origin: TestOrigin; dirs: Awaited<ReturnType<typeof makeDirs>> }> {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const dirs = await makeDirs();
    return { origin, dirs };
  }

  async function start (dirs: Awaited<ReturnType<typeof makeDirs>>, args: string[] = []): Promise<AgentProcess> {
    const agent = await AgentProcess.start({ dirs, args });
    cleanup(() => agent.cleanup());
    return agent;
  }

  it('after kill -9 at ~30% of 256 MiB, fetches only what is missing and reads byte-exact', async () => {
    const { origin, dirs } = await setup();
    const size = 256 * MiB;
    const content = origin.add('big.bin', size, { throttle: 8 * MiB });
    const first = await start(dirs);
    await first.add(origin.url('big.bin'));
    await openOnce(first.path('big.bin')); // an open starts the download
    await waitForFile(first, 'big.bin', f => f.presentBytes >= 0.3 * size);
    await first.stop('SIGKILL');
    const sentBeforeKill = origin.bytesSent('big.bin');

    origin.setFaults('big.bin', {}); // full speed for the second run
    const second = await start(dirs);
    assert.equal(await hashFile(second.path('big.bin'), { timeoutMs: 120_000 }), sha256(content));
    const ratio = origin.bytesSent('big.bin') / size;
    process.stdout.write(
      `# kill -9 resume: origin sent ${(sentBeforeKill / MiB).toFixed(1)} MiB before the kill, ${(origin.bytesSent('big.bin') / MiB).toFixed(1)} MiB in all: ratio ${ratio.toFixed(4)}\n`
    );
    assert.ok(ratio <= 1.05, `origin sent ${ratio.toFixed(4)} x the file size`);
    const resumed = origin.requests.filter(
      r => r.file === 'big.bin' && r.method === 'GET' && r.range !== null && !r.range.startsWith('bytes=0-')
    );
    assert.ok(resumed.length >= 1 && resumed.every(r => r.ifRange !== null), 'the resume asked for the missing range with If-Range');
  });

  it('after a clean stop mid-download, continues with no reader and completes', async () => {
    const { origin, dirs } = await setup();
    const size = 64 * MiB;
    const content = origin.add('bg.bin', size, { throttle: 16 * MiB });
    const first = await start(dirs);
    await first.add(origin.url('bg.bin'));
    await openOnce(first.path('bg.bin'));
    await waitForFile(first, 'bg.bin', f => f.presentBytes >= 8 * MiB);
    assert.equal(await first.stop('SIGTERM'), 0);

    origin.setFaults('bg.bin', {});
    const second = await start(dirs);
    const done = await waitForFile(second, 'bg.bin', f => f.state === 'complete');
    assert.equal(done.presentBytes, size);
    assert.equal(await hashFile(second.path('bg.bin')), sha256(content));
    assert.ok(origin.bytesSent('bg.bin') <= size * 1.01, 'a clean stop committed everything it had');
  });

  it('drops the old bytes when the origin changed while the agent was down, and serves only the new version', async () => {
    const { origin, dirs } = await setup();
    const size = 32 * MiB;
    origin.add('doc.bin', size, { throttle: 16 * MiB });
    const first = await start(dirs, ['--no-resume-downloads']);
    await first.add(origin.url('doc.bin'));
    await openOnce(first.path('doc.bin'));
    await waitForFile(first, 'doc.bin', f => f.presentBytes >= 8 * MiB);
    assert.equal(await first.stop('SIGTERM'), 0);

    const fresh = origin.add('doc.bin', Buffer.from(origin.add('doc-v2-seed', size))); // same name and size, new bytes and ETag
    const second = await start(dirs);
    assert.equal(await hashFile(second.path('doc.bin'), { timeoutMs: 60_000 }), sha256(fresh));
    assert.ok(second.logLines.some(l => /changed at the origin/.test(String(l.msg))));
  });

  it('never claims a byte that is not on disk, whenever the agent is killed', async () => {
    const { origin, dirs } = await setup();
    const size = 96 * MiB;
    const content = origin.add('crash.bin', size, { throttle: 24 * MiB });
    let agent = await start(dirs);
    await agent.add(origin.url('crash.bin'));
    let checked = 0;
    for (let round = 0; round < 4; round++) {
      await openOnce(agent.path('crash.bin'));
      // The first round kills after a commit, so some claimed bytes are always checked.
      if (round === 0) await waitForFile(agent, 'crash.bin', () => claimedRanges(dirs, 'crash.bin').ranges.length > 0);
      await new Promise(resolve => setTimeout(resolve, 200 + Math.floor(Math.random() * 900))); // a random point of the download
      await agent.stop('SIGKILL');
      const { id, ranges } = claimedRanges(dirs, 'crash.bin');
      const fh = await fs.open(tempFile(dirs, id), 'r');
      try {
        for (const [s, e] of ranges) {
          const buf = Buffer.alloc(e - s);
          const { bytesRead } = await fh.read(buf, 0, e - s, s);
          assert.equal(bytesRead, e - s, `range ${s}-${e} is not all on disk`);
          assert.ok(buf.equals(content.subarray(s, e)), `range ${s}-${e} differs from the origin`);
          checked += e - s;
        }
      } finally {
        await fh.close();
      }
      agent = await start(dirs);
    }
    assert.ok(checked > 0, 'some committed bytes were checked');
    assert.equal(await hashFile(agent.path('crash.bin'), { timeoutMs: 60_000 }), sha256(content));
  });

  it('trusts ranges written but not yet synced after kill -9, and fetches them again after a reboot', async () => {
    const { origin, dirs } = await setup();
    const size = 64 * MiB;
    const content = origin.add('reboot.bin', size, { throttle: 16 * MiB });
    const first = await start(dirs);
    await first.add(origin.url('reboot.bin'));
    await openOnce(first.path('reboot.bin'));
    // Commits come every second; the first sync of a file comes only after 30 s (or at close).
    await waitForFile(first, 'reboot.bin', f => f.presentBytes >= 16 * MiB && claimedRanges(dirs, 'reboot.bin').ranges.length > 0);
    await first.stop('SIGKILL');
    const { ranges, synced } = claimedRanges(dirs, 'reboot.bin');
    const claimed = ranges.reduce((n, [s, e]) => n + e - s, 0);
    const durable = synced.reduce((n, [s, e]) => n + e - s, 0);
    assert.ok(claimed >= 8 * MiB, `${claimed} bytes claimed, written in this boot`);
    assert.equal(durable, 0, 'none synced yet: no fdatasync on the write path');

    pretendReboot(dirs);
    origin.setFaults('reboot.bin', {});
    const sentBefore = origin.bytesSent('reboot.bin');
    const second = await start(dirs);
    assert.equal(await hashFile(second.path('reboot.bin'), { timeoutMs: 60_000 }), sha256(content));
    const fetched = origin.bytesSent('reboot.bin') - sentBefore;
    assert.ok(fetched >= size, `after the reboot the whole file came again (${fetched} of ${size} bytes): unsynced ranges are not trusted`);
  });
});
