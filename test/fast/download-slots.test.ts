import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DownloadKind } from '../../agent/store/download-slots';
import { DownloadSlots, STALLED_YIELD_MS, stalledYieldMs, type SlotHolder } from '../../agent/store/download-slots';
import { settle } from '../helpers/scheduler-harness';

/** A download as the slots see it; `idleMs` back dates its file's last byte. */
function holder (kind: DownloadKind, needed = true, idleMs = 0): SlotHolder & { preempted: number } {
  const since = performance.now() - idleMs;
  return { kind, needed: () => needed, fileLastProgressAt: () => since, preempted: 0, preempt () { this.preempted++; } };
}

/** A file's retry that records when it was called, and may try for a slot again. */
function retrier (name: string, order: string[], then?: () => void): () => void {
  return () => { order.push(name); then?.(); };
}

const nothing = (): void => {};

describe('DownloadSlots, the connection cap across files', () => {
  it('grants up to the cap and counts the peak', () => {
    const slots = new DownloadSlots(2);
    assert.equal(slots.acquire(holder('fill'), nothing), true);
    assert.equal(slots.acquire(holder('demand'), nothing), true);
    assert.equal(slots.acquire(holder('demand'), nothing), false);
    assert.equal(slots.active, 2);
    assert.equal(slots.peak, 2);
  });

  it('lets a demand download stop a fill, which keeps its slot until it has ended, then hands it over', async () => {
    const slots = new DownloadSlots(1);
    const fill = holder('fill');
    slots.acquire(fill, nothing);
    const demand = holder('demand');
    const order: string[] = [];
    let got = false;
    assert.equal(slots.acquire(demand, retrier('demand', order, () => { got = slots.acquire(demand, nothing); })), false);
    assert.equal(fill.preempted, 1);
    assert.equal(slots.acquire(holder('demand'), nothing), false);
    assert.equal(fill.preempted, 1, 'a holder already stopping is not asked again');
    assert.equal(slots.active, 1, 'the stopping fill still counts');
    slots.release(fill);
    assert.equal(slots.acquire(holder('fill'), nothing), false, 'the freed slot is owed: the fill\'s file cannot take it back');
    assert.equal(slots.acquire(holder('demand'), nothing), false, 'nor can anyone else');
    await settle();
    assert.deepEqual(order, ['demand']);
    assert.equal(got, true);
  });

  it('never stops a demand download that a waiting read still needs; stops one whose reads are served', () => {
    const slots = new DownloadSlots(1);
    const busy = holder('demand', true);
    slots.acquire(busy, nothing);
    slots.acquire(holder('demand'), nothing);
    assert.equal(busy.preempted, 0);
    const slots2 = new DownloadSlots(1);
    const idle = holder('demand', false);
    slots2.acquire(idle, nothing);
    slots2.acquire(holder('demand'), nothing);
    assert.equal(idle.preempted, 1);
  });

  it('stops a download of the file stalled longest for a waiting read, never one that moves', () => {
    const slots = new DownloadSlots(3);
    const moving = holder('demand', true, 100);
    const stalledLong = holder('demand', true, 9000);
    const stalledShort = holder('demand', true, 3000);
    for (const h of [moving, stalledShort, stalledLong]) slots.acquire(h, nothing);
    assert.equal(slots.acquire(holder('demand'), nothing), false);
    assert.deepEqual([moving.preempted, stalledShort.preempted, stalledLong.preempted], [0, 0, 1]);
    const busy = new DownloadSlots(1);
    const between = holder('demand', true, STALLED_YIELD_MS - 500); // between two packets, not stalled
    busy.acquire(between, nothing);
    busy.acquire(holder('demand'), nothing);
    assert.equal(between.preempted, 0);
  });

  it('a short read timeout gives a stalled file\'s connection away sooner: a quarter of it, 250 ms to 2 s', () => {
    assert.equal(stalledYieldMs(20_000), STALLED_YIELD_MS);
    assert.equal(stalledYieldMs(3000), 750);
    assert.equal(stalledYieldMs(500), 250);
    const slots = new DownloadSlots(1, stalledYieldMs(3000));
    const stalled = holder('demand', true, 800); // not stalled at 2 s, but past a 3 s timeout's quarter
    slots.acquire(stalled, nothing);
    assert.equal(slots.acquire(holder('demand'), nothing), false);
    assert.equal(stalled.preempted, 1, 'it gave way with three quarters of the healthy read\'s deadline left');
  });

  it('a stalled file stops nobody: it waits for a free slot', () => {
    for (const other of [holder('demand', true, 9000), holder('fill'), holder('demand', false)]) {
      const slots = new DownloadSlots(1);
      slots.acquire(other, nothing);
      assert.equal(slots.acquire(holder('demand', true, 5000), nothing), false);
      assert.equal(other.preempted, 0, `a ${other.kind} download was stopped for a stalled file`);
    }
  });

  it('asks waiting files again once a holder has gone without a byte long enough to give way', async () => {
    const slots = new DownloadSlots(1);
    let stopped!: () => void;
    const stoppedNow = new Promise<void>(resolve => { stopped = resolve; });
    const soon = { ...holder('demand', true, STALLED_YIELD_MS - 150), preempt () { this.preempted++; stopped(); } };
    slots.acquire(soon, nothing);
    // Healthy: its file's bytes keep coming, so a late timer cannot make it look stalled too.
    const healthy = { ...holder('demand'), fileLastProgressAt: () => performance.now() };
    let tries = 0;
    const retry = (): void => { tries++; slots.acquire(healthy, retry); };
    assert.equal(slots.acquire(healthy, retry), false);
    assert.equal(soon.preempted, 0, 'not stalled yet');
    // The slots' timer does not hold a process open (the agent's mount does): this does, and bounds the wait.
    let guard: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => { guard = setTimeout(() => reject(new Error('never asked again')), 5000); });
    try {
      await Promise.race([stoppedNow, late]);
    } finally {
      clearTimeout(guard);
    }
    assert.ok(tries >= 1, 'the waiting file was asked again by the slots\' own timer');
  });

  it('a fill download never stops another download', () => {
    const slots = new DownloadSlots(1);
    const other = holder('fill');
    slots.acquire(other, nothing);
    assert.equal(slots.acquire(holder('fill'), nothing), false);
    assert.equal(other.preempted, 0);
  });

  it('tells files waiting for demand first; fill only if a slot is left after them', async () => {
    const slots = new DownloadSlots(1);
    const h = holder('demand');
    slots.acquire(h, nothing);
    const order: string[] = [];
    const taker = holder('demand');
    slots.acquire(holder('fill'), retrier('fill', order));
    const closed = retrier('closed', order);
    slots.acquire(holder('demand', true), retrier('demand', order, () => { slots.acquire(taker, nothing); }));
    slots.acquire(holder('demand', true), closed);
    slots.forget(closed);
    slots.release(h);
    await settle();
    assert.deepEqual(order, ['demand'], 'the demand file took the slot: fill waits on');
    slots.release(taker);
    await settle();
    assert.deepEqual(order, ['demand', 'fill']);
  });

  it('poke tells files waiting for demand when reads were served elsewhere', async () => {
    const slots = new DownloadSlots(1);
    slots.acquire(holder('demand'), nothing);
    let told = 0;
    slots.acquire(holder('demand'), () => { told++; });
    slots.poke();
    await settle();
    assert.equal(told, 1);
  });
});
