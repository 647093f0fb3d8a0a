import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RangeSet } from '../../agent/store/range-set';

describe('RangeSet', () => {
  it('merges overlapping and adjacent ranges and counts bytes once', () => {
    const r = new RangeSet();
    r.add(10, 20);
    r.add(30, 40);
    assert.deepEqual(r.add(20, 30), { start: 10, end: 40 });
    r.add(15, 35);
    assert.deepEqual(r.toArray(), [[10, 40]]);
    assert.equal(r.bytes, 30);
  });

  it('answers contains, firstMissing and nextPresent around holes', () => {
    const r = new RangeSet();
    r.add(0, 100);
    r.add(200, 300);
    assert.equal(r.contains(0, 100), true);
    assert.equal(r.contains(50, 101), false);
    assert.equal(r.contains(150, 150), true);
    assert.equal(r.firstMissing(0, 400), 100);
    assert.equal(r.firstMissing(200, 300), -1);
    assert.equal(r.firstMissing(250, 400), 300);
    assert.equal(r.nextPresent(100, 400), 200);
    assert.equal(r.nextPresent(250, 400), 250);
    assert.equal(r.nextPresent(300, 400), 400);
  });

  it('truncates ranges beyond a length', () => {
    const r = new RangeSet();
    r.add(0, 100);
    r.add(200, 300);
    r.truncate(250);
    assert.deepEqual(r.toArray(), [[0, 100], [200, 250]]);
    assert.equal(r.bytes, 150);
  });

  it('agrees with a byte map under random adds', () => {
    const size = 2000;
    const r = new RangeSet();
    const map = new Uint8Array(size);
    let seed = 7;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let i = 0; i < 300; i++) {
      const s = rand(size);
      const e = Math.min(size, s + rand(60));
      r.add(s, e);
      map.fill(1, s, e);
      const a = rand(size);
      const b = Math.min(size, a + rand(80));
      assert.equal(r.contains(a, b), map.subarray(a, b).every(x => x === 1));
      const fm = map.subarray(a, b).indexOf(0);
      assert.equal(r.firstMissing(a, b), fm < 0 ? -1 : a + fm);
    }
    assert.equal(r.bytes, map.reduce((n, x) => n + x, 0));
  });
});
