import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FsError } from '../../agent/errors';
import { RangeSet } from '../../agent/store/range-set';
import { WaiterQueue } from '../../agent/store/waiter-queue';

/** A queue plus the ranges it serves, with a write() that wakes as the store does. */
function harness (opts: { stallMs?: number; maxWaitMs?: number } = {}) {
  let lastProgress = performance.now();
  const present = new RangeSet();
  const queue = new WaiterQueue(
    { stallMs: opts.stallMs ?? 60_000, maxWaitMs: opts.maxWaitMs ?? 60_000, lastProgressAt: () => lastProgress }
  );
  const outcomes = new Map<string, FsError | null>();
  return {
    queue,
    outcomes,
    wait (label: string, offset: number, end: number, signal?: AbortSignal): Promise<FsError | null> {
      return new Promise(resolve => {
        queue.add(offset, end, err => { outcomes.set(label, err); resolve(err); }, signal);
      });
    },
    write (start: number, end: number): void {
      const merged = present.add(start, end);
      lastProgress = performance.now();
      queue.wake({ start, end }, merged);
    },
    progress (): void { lastProgress = performance.now(); },
  };
}

describe('WaiterQueue', () => {
  it('wakes a waiter only when its whole range is present, across out-of-order writes', async () => {
    const h = harness();
    const a = h.wait('a', 0, 100);
    const b = h.wait('b', 50, 250);
    const c = h.wait('c', 200, 300);
    h.write(200, 300); // c is complete; b still misses 100..200, a misses 0..100
    assert.deepEqual([...h.outcomes.keys()], ['c']);
    h.write(100, 200); // b still misses 50..100
    assert.deepEqual([...h.outcomes.keys()], ['c']);
    h.write(0, 100);
    assert.deepEqual([...h.outcomes.keys()].sort(), ['a', 'b', 'c']);
    assert.equal(await a, null);
    assert.equal(await b, null);
    assert.equal(await c, null);
    assert.equal(h.queue.size, 0);
  });

  it('wakes 10,000 waiters on one store in one pass', async () => {
    const h = harness();
    const all: Array<Promise<FsError | null>> = [];
    for (let i = 0; i < 10_000; i++) all.push(h.wait(`w${i}`, i * 4096, i * 4096 + 4096));
    assert.equal(h.queue.size, 10_000);
    h.write(0, 10_000 * 4096);
    assert.equal(h.queue.size, 0);
    assert.equal(h.outcomes.size, 10_000);
    assert.ok((await Promise.all(all)).every(e => e === null));
  });

  it('does not wake waiters whose range is still incomplete when many wait', () => {
    const h = harness();
    for (let i = 0; i < 1000; i++) void h.wait(`w${i}`, i * 10, i * 10 + 10);
    h.write(0, 5000); // the first 500 only
    assert.equal(h.outcomes.size, 500);
    assert.ok([...h.outcomes.keys()].every(k => Number(k.slice(1)) < 500));
    assert.equal(h.queue.size, 500);
    h.queue.rejectAll(new FsError('EIO', 'test over'));
  });

  it('rejects with ETIMEDOUT once the download has been silent for the stall time', async () => {
    const h = harness({ stallMs: 80 });
    const began = performance.now();
    const err = await h.wait('a', 0, 10);
    assert.ok(err instanceof FsError);
    assert.equal(err.errno, 'ETIMEDOUT');
    assert.ok(performance.now() - began >= 70, 'not before the stall time');
    assert.equal(h.queue.size, 0);
  });

  it('counts the stall from the last byte, so a new waiter on a stalled download fails at once', async () => {
    const h = harness({ stallMs: 100 });
    await h.wait('first', 0, 10); // fails after ~100 ms of silence
    const began = performance.now();
    const err = await h.wait('retry', 0, 10);
    assert.equal(err?.errno, 'ETIMEDOUT');
    assert.ok(performance.now() - began < 50, 'the retry was not made to wait another stall period');
  });

  it('keeps a waiter alive while bytes elsewhere keep arriving, up to the max wait', async () => {
    const h = harness({ stallMs: 60, maxWaitMs: 300 });
    const began = performance.now();
    const waiting = h.wait('far', 1_000_000, 1_000_010);
    const feeder = setInterval(() => h.progress(), 20);
    const err = await waiting;
    clearInterval(feeder);
    assert.equal(err?.errno, 'ETIMEDOUT');
    assert.ok(performance.now() - began >= 290, 'a moving download does not fail the reader before max wait');
  });

  it('rejects an aborted waiter alone, and rejects everyone on rejectAll', async () => {
    const h = harness();
    const ac = new AbortController();
    const aborted = h.wait('aborted', 0, 10, ac.signal);
    const others = [h.wait('x', 0, 10), h.wait('y', 5, 50), h.wait('z', 100, 200)];
    ac.abort();
    assert.equal((await aborted)?.errno, 'ECANCELED');
    assert.equal(h.queue.size, 3);
    h.queue.rejectAll(new FsError('EIO', 'download failed'));
    for (const e of await Promise.all(others)) assert.equal(e?.errno, 'EIO');
    assert.equal(h.queue.size, 0);
  });

  it('lists waiters with offset, length, time waited and time left', () => {
    const h = harness({ stallMs: 10_000, maxWaitMs: 20_000 });
    void h.wait('a', 4096, 8192);
    const [w] = h.queue.list();
    assert.equal(w.offset, 4096);
    assert.equal(w.length, 4096);
    assert.ok(w.waitedMs >= 0 && w.deadlineInMs > 9000 && w.deadlineInMs <= 10_000);
    h.queue.rejectAll(new FsError('EIO', 'done'));
  });

  it('says when the number of waiting reads changed: once per add, once per batch settled', () => {
    const sizes: number[] = [];
    const present = new RangeSet();
    const queue = new WaiterQueue({
      stallMs: 60_000, maxWaitMs: 60_000, lastProgressAt: () => performance.now(), onSizeChange: () => sizes.push(queue.size),
    });
    for (let i = 0; i < 3; i++) queue.add(i * 10, i * 10 + 10, () => {});
    queue.wake({ start: 0, end: 20 }, present.add(0, 20)); // settles two in one batch
    queue.rejectAll(new FsError('EIO', 'done'));
    assert.deepEqual(sizes, [1, 2, 3, 1, 0]);
  });
});
