import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { BandwidthLimiter, parseRate, rateText } from '../../agent/store/bandwidth-limiter';
import type { DownloadKind } from '../../agent/store/download-slots';
import type { FsError } from '../../agent/errors';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('BandwidthLimiter', () => {
  // Simulated time: the limiter's clock and its timers move together.
  let now = 0;
  beforeEach(() => {
    now = 0;
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => mock.timers.reset());
  const advance = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 5) {
      now += 5;
      mock.timers.tick(5);
      await Promise.resolve(); // let woken takes continue
      await Promise.resolve();
    }
  };

  /** A download that takes 64 KiB pieces as fast as the limiter lets it; the bytes it got. */
  function download (limiter: BandwidthLimiter, kind: DownloadKind, signal = new AbortController().signal): { bytes: () => number } {
    let bytes = 0;
    void (async () => {
      for (;;) {
        const wait = limiter.take(64 * KiB, kind, signal);
        if (wait !== null) await wait.catch(() => { throw new Error('stopped'); });
        bytes += 64 * KiB;
        if (bytes > 1024 * MiB) return;
      }
    })().catch(() => {});
    return { bytes: () => bytes };
  }

  it('never waits without a cap', () => {
    const limiter = new BandwidthLimiter({ total: null, background: null }, () => now);
    assert.equal(limiter.take(MiB, 'demand', new AbortController().signal), null);
    assert.equal(limiter.take(MiB, 'fill', new AbortController().signal), null);
  });

  it('holds every download together to the total cap, within a burst, over 10 s', async () => {
    const limiter = new BandwidthLimiter({ total: 8 * MiB, background: null }, () => now);
    const a = download(limiter, 'demand');
    const b = download(limiter, 'fill');
    await advance(10_000);
    const total = a.bytes() + b.bytes();
    assert.ok(Math.abs(total - 80 * MiB) <= 2 * MiB, `${(total / MiB).toFixed(1)} MiB in 10 s under 8 MiB/s`);
    limiter.close();
  });

  it('serves a download a program waits on before any background one: the fill gets nothing while demand takes all', async () => {
    const limiter = new BandwidthLimiter({ total: 4 * MiB, background: null }, () => now);
    const fill = download(limiter, 'fill');
    const demand = download(limiter, 'demand');
    await advance(5000);
    assert.ok(demand.bytes() >= 19 * MiB, `demand got ${(demand.bytes() / MiB).toFixed(1)} MiB of 20`);
    assert.ok(fill.bytes() <= 512 * KiB, `the fill got ${(fill.bytes() / KiB).toFixed(0)} KiB while demand wanted everything`);
    limiter.close();
  });

  it('caps background downloads alone under --background-bwlimit, never demand ones', async () => {
    const limiter = new BandwidthLimiter({ total: null, background: MiB }, () => now);
    const fill = download(limiter, 'fill');
    assert.equal(limiter.take(64 * KiB, 'demand', new AbortController().signal), null, 'demand is not capped');
    await advance(10_000);
    assert.ok(Math.abs(fill.bytes() - 10 * MiB) <= 512 * KiB, `the fill got ${(fill.bytes() / MiB).toFixed(2)} MiB in 10 s under 1 MiB/s`);
    limiter.close();
  });

  it('a new cap applies at once, and off lets every waiting take go', async () => {
    const limiter = new BandwidthLimiter({ total: MiB, background: null }, () => now);
    const d = download(limiter, 'demand');
    await advance(2000);
    const slow = d.bytes();
    limiter.set({ total: null, background: null });
    await advance(10);
    assert.ok(d.bytes() > slow + 100 * MiB, 'uncapped, the download runs freely');
    limiter.close();
  });

  it('a cancelled download leaves the line with ECANCELED and does not hold up the next', async () => {
    const limiter = new BandwidthLimiter({ total: 64 * KiB, background: null }, () => now);
    const ac = new AbortController();
    assert.equal(limiter.take(256 * KiB, 'demand', ac.signal), null); // into debt
    const waiting = limiter.take(64 * KiB, 'demand', ac.signal);
    assert.ok(waiting !== null);
    const other = limiter.take(64 * KiB, 'demand', new AbortController().signal);
    ac.abort();
    await assert.rejects(waiting, (err: FsError) => err.errno === 'ECANCELED');
    await advance(4000);
    await other; // served once the debt is paid, not behind the cancelled one
    limiter.close();
  });
});

describe('rates as rclone writes them', () => {
  it('reads K, M, G as KiB, MiB, GiB per second, and off', () => {
    assert.equal(parseRate('8M'), 8 * MiB);
    assert.equal(parseRate('512k'), 512 * KiB);
    assert.equal(parseRate('1.5G'), 1.5 * 1024 * MiB);
    assert.equal(parseRate('8MiB/s'), 8 * MiB);
    assert.equal(parseRate(65536), 65536);
    assert.equal(parseRate('off'), null);
    assert.equal(parseRate('0'), null);
    assert.throws(() => parseRate('fast'), /must be off or a rate of at least 64K/);
    assert.throws(() => parseRate('32K'), /at least 64K/);
  });

  it('writes a rate back in the largest unit that divides it', () => {
    assert.equal(rateText(8 * MiB), '8M');
    assert.equal(rateText(512 * KiB), '512K');
    assert.equal(rateText(1000), '1000');
  });
});
