import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { hashFile, readRange } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('files read through the mount are byte-exact', () => {
  const fx = useOriginAndAgent();

  for (const [label, size] of [['empty', 0], ['one byte', 1], ['100 KiB', 100 * 1024], ['256 MiB', 256 * MiB]] as const) {
    it(`reads a ${label} file whole`, async () => {
      const name = `whole-${size}.bin`;
      const content = fx.origin.add(name, size);
      await fx.agent.add(fx.origin.url(name));
      assert.equal(await hashFile(fx.agent.path(name), { timeoutMs: 120_000 }), sha256(content));
    });
  }

  it('answers a waiting read the moment its bytes land, not at a deadline (no lost wakeup)', async () => {
    // 2 MiB/s: each read's bytes land within half a second; read-timeout (20 s) and read-max-wait
    // are far away, so a read that missed its wake-up would take one of those, and fail this.
    const content = fx.origin.add('slow.bin', 8 * MiB, { throttle: 2 * MiB });
    await fx.agent.add(fx.origin.url('slow.bin'));
    for (const offset of [0, 300_000, 900_000]) {
      const r = await readRange(fx.agent.path('slow.bin'), offset, 64 * 1024, { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(content.subarray(offset, offset + 64 * 1024)), `bytes at ${offset}`);
      assert.ok(r.ms < 3000, `a read whose bytes came within half a second took ${r.ms.toFixed(0)} ms`);
    }
  });

  it('answers random-offset reads during a throttled download with the right bytes', async () => {
    const size = 24 * MiB;
    const content = fx.origin.add('throttled.bin', size, { throttle: 16 * MiB });
    await fx.agent.add(fx.origin.url('throttled.bin'));
    // Deterministic "random" offsets, some unaligned, some crossing 128 KiB request boundaries.
    const offsets = Array.from({ length: 24 }, (_, i) => (i * 7_919_333 + 12_345) % (size - 300_000));
    const reads = offsets.map(async offset => {
      const length = 1 + (offset % 250_000);
      const r = await readRange(fx.agent.path('throttled.bin'), offset, length, { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.equals(content.subarray(offset, offset + length)), `bytes at ${offset} (+${length}) differ`);
    });
    await Promise.all(reads);
    // Reading past the end returns nothing rather than an error or garbage.
    const past = await readRange(fx.agent.path('throttled.bin'), size - 10, 100);
    assert.ok(past.stdout.equals(content.subarray(size - 10)));
  });
});
