import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DownloadKind } from '../../agent/store/download-scheduler';
import { DownloadSlots, type SlotHolder } from '../../agent/store/download-slots';
import { settle } from '../helpers/scheduler-harness';

function holder (kind: DownloadKind, needed = true): SlotHolder & { preempted: number } {
  return { kind, needed: () => needed, preempted: 0, preempt () { this.preempted++; } };
}

describe('DownloadSlots, the connection cap across files', () => {
  it('grants up to the cap and counts the peak', () => {
    const slots = new DownloadSlots(2);
    assert.equal(slots.acquire(holder('fill')), true);
    assert.equal(slots.acquire(holder('demand')), true);
    assert.equal(slots.acquire(holder('demand')), false);
    assert.equal(slots.active, 2);
    assert.equal(slots.peak, 2);
  });

  it('lets a demand download stop a fill (once), which keeps its slot until it has ended', async () => {
    const slots = new DownloadSlots(1);
    const fill = holder('fill');
    slots.acquire(fill);
    const demand = holder('demand');
    let retried = 0;
    assert.equal(slots.acquire(demand), false);
    slots.whenFree('demand', () => { retried++; });
    assert.equal(fill.preempted, 1);
    assert.equal(slots.acquire(holder('demand')), false);
    assert.equal(fill.preempted, 1, 'a holder already stopping is not asked again');
    assert.equal(slots.active, 1, 'the stopping fill still counts');
    slots.release(fill);
    await settle();
    assert.equal(retried, 1);
    assert.equal(slots.acquire(demand), true);
  });

  it('never stops a demand download that a waiting read still needs; stops one whose reads are served', () => {
    const slots = new DownloadSlots(1);
    const busy = holder('demand', true);
    slots.acquire(busy);
    slots.acquire(holder('demand'));
    assert.equal(busy.preempted, 0);
    const slots2 = new DownloadSlots(1);
    const idle = holder('demand', false);
    slots2.acquire(idle);
    slots2.acquire(holder('demand'));
    assert.equal(idle.preempted, 1);
  });

  it('a fill download never stops another download', () => {
    const slots = new DownloadSlots(1);
    const other = holder('fill');
    slots.acquire(other);
    assert.equal(slots.acquire(holder('fill')), false);
    assert.equal(other.preempted, 0);
  });

  it('tells files waiting for demand first; fill only if a slot is left after them', async () => {
    const slots = new DownloadSlots(1);
    const h = holder('demand');
    slots.acquire(h);
    const order: string[] = [];
    const taker = holder('demand');
    slots.whenFree('fill', () => order.push('fill'));
    slots.whenFree('demand', () => { order.push('demand'); slots.acquire(taker); });
    const closed = (): void => { order.push('closed'); };
    slots.whenFree('demand', closed);
    slots.forget(closed);
    slots.release(h);
    await settle();
    assert.deepEqual(order, ['demand'], 'the demand file took the slot: fill waits on');
    slots.release(taker);
    await settle();
    assert.deepEqual(order, ['demand', 'fill']);
  });

  it('refuses a fill a free slot while a file waits for one for a demand download', () => {
    const slots = new DownloadSlots(1);
    const fill = holder('fill');
    slots.acquire(fill);
    slots.acquire(holder('demand')); // stops the fill
    slots.whenFree('demand', () => {});
    slots.release(fill); // the stopped fill has ended; its file at once wants to fill again
    assert.equal(slots.acquire(holder('fill')), false, 'the freed slot is kept for the waiting read');
  });

  it('poke wakes files waiting for demand when reads were served elsewhere', async () => {
    const slots = new DownloadSlots(1);
    let woken = 0;
    slots.whenFree('demand', () => { woken++; });
    slots.poke();
    await settle();
    assert.equal(woken, 1);
  });
});
