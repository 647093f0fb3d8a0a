import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WINDOW, ReadAhead } from '../../agent/fs/read-ahead';

const KiB = 1024;
const MiB = 1024 * KiB;
const START = MiB + 128 * KiB;

describe('read-ahead per open handle', () => {
  it('starts at 1 MiB + 128 KiB past the first read, and doubles on each sequential read up to 64 MiB', () => {
    const ra = new ReadAhead();
    assert.equal(ra.after(0, 128 * KiB), 128 * KiB + START);
    let window = START;
    for (let pos = 128 * KiB; pos < 64 * 128 * KiB; pos += 128 * KiB) {
      window = Math.min(window * 2, MAX_WINDOW);
      assert.equal(ra.after(pos, 128 * KiB), pos + 128 * KiB + window);
    }
    assert.equal(window, MAX_WINDOW);
  });

  it('counts reads the kernel sent a little out of order as sequential, and never moves its end back', () => {
    const ra = new ReadAhead();
    ra.after(0, 128 * KiB);
    ra.after(256 * KiB, 128 * KiB); // the kernel's read-ahead overtook the read before it
    const end = ra.after(128 * KiB, 128 * KiB);
    assert.equal(end, 384 * KiB + START * 4);
  });

  it('shrinks back to the start size after a seek', () => {
    const ra = new ReadAhead();
    for (let pos = 0; pos < 10 * 128 * KiB; pos += 128 * KiB) ra.after(pos, 128 * KiB);
    assert.equal(ra.after(500 * MiB, 128 * KiB), 500 * MiB + 128 * KiB + START);
  });
});
