import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitForWake } from '../../agent/wait-for-wake';

describe('waitForWake', () => {
  it('ends on the first of a wake, a timeout or an abort, and once only', async () => {
    let wake!: () => void;
    const woken = waitForWake(60_000, null, w => { wake = w; });
    wake();
    wake();
    assert.equal(await woken, 'woken');
    assert.equal(await waitForWake(1, null, () => {}), 'timeout');
    const ac = new AbortController();
    const aborted = waitForWake(Infinity, ac.signal, () => {});
    ac.abort();
    assert.equal(await aborted, 'aborted');
    assert.equal(await waitForWake(Infinity, ac.signal, () => {}), 'aborted', 'an aborted signal ends it at once');
  });
});
