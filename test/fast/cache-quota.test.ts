import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { CacheQuota } from '../../agent/cache/cache-quota';
import { FsError } from '../../agent/errors';

const MiB = 1024 * 1024;
const silent = pino({ level: 'silent' });

/** Whether a promise has settled by the time every queued callback ran. */
async function settledYet (p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => { done = true; }, () => { done = true; });
  for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve));
  return done;
}

describe('CacheQuota', () => {
  it('keeps 1% (at least 64 KiB) for the filesystem and grants reservations that fit', async () => {
    const quota = new CacheQuota(10 * MiB, () => Promise.resolve(0), silent);
    const fits = 10 * MiB - Math.floor(10 * MiB * 0.01);
    await quota.reserve('a', fits, new AbortController().signal);
    assert.equal(quota.usedBytes, fits);
    quota.setAllocated('a', 4 * MiB); // the write landed: the reservation becomes what the file holds
    assert.equal(quota.usedBytes, 4 * MiB);
  });

  it('where files do not stay sparse, counts a file\'s full size from its first byte, and nothing once it holds none', () => {
    const sizes = new Map([['big', 6 * MiB]]);
    const quota = new CacheQuota(10 * MiB, () => Promise.resolve(0), silent, id => sizes.get(id));
    quota.setAllocated('big', 64 * 1024);
    assert.equal(quota.usedBytes, 6 * MiB);
    quota.setAllocated('big', 0);
    assert.equal(quota.usedBytes, 0);
    const sparse = new CacheQuota(10 * MiB, () => Promise.resolve(0), silent);
    sparse.setAllocated('big', 64 * 1024);
    assert.equal(sparse.usedBytes, 64 * 1024);
  });

  it('evicts other files (never the writer) when a reservation does not fit', async () => {
    const asked: Array<[number, string]> = [];
    const quota = new CacheQuota(10 * MiB, (need, except) => {
      asked.push([need, except]);
      quota.setAllocated('old', 0);
      return Promise.resolve(8 * MiB);
    }, silent);
    quota.setAllocated('old', 8 * MiB);
    await quota.reserve('new', 4 * MiB, new AbortController().signal);
    assert.equal(asked.length, 1);
    assert.equal(asked[0][1], 'new');
    assert.ok(asked[0][0] > 0 && asked[0][0] <= 4 * MiB, `asked to free ${asked[0][0]}`);
    assert.equal(quota.usedBytes, 4 * MiB);
  });

  it('makes a write wait while nothing can be evicted, until a file frees space', async () => {
    const quota = new CacheQuota(10 * MiB, () => Promise.resolve(0), silent);
    quota.setAllocated('open', 9 * MiB);
    const waiting = quota.reserve('writer', 2 * MiB, new AbortController().signal);
    assert.equal(await settledYet(waiting), false, 'waits while over the quota');
    quota.setAllocated('open', 1 * MiB); // the open file was closed and evicted
    await waiting;
    assert.equal(quota.usedBytes, 3 * MiB);
  });

  it('gives up a wait when the download stops', async () => {
    const quota = new CacheQuota(10 * MiB, () => Promise.resolve(0), silent);
    quota.setAllocated('open', 10 * MiB);
    const ac = new AbortController();
    const waiting = quota.reserve('writer', MiB, ac.signal);
    ac.abort();
    await assert.rejects(waiting, (err: FsError) => err.errno === 'ECANCELED');
  });

  it('drops a reservation whose write did not happen', async () => {
    const quota = new CacheQuota(10 * MiB, () => Promise.resolve(0), silent);
    await quota.reserve('a', 2 * MiB, new AbortController().signal);
    quota.unreserve('a');
    assert.equal(quota.usedBytes, 0);
  });

  it('a full disk: evicts if it can, else waits for a change, and logs once per episode', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(s); } });
    let evictable = 0;
    const quota = new CacheQuota(100 * MiB, () => Promise.resolve(evictable), log);
    evictable = MiB;
    await quota.waitForDiskSpace('a', MiB, new AbortController().signal); // returns at once: something was evicted
    evictable = 0;
    const waiting = quota.waitForDiskSpace('a', MiB, new AbortController().signal);
    assert.equal(await settledYet(waiting), false);
    quota.poke();
    await waiting;
    assert.equal(lines.filter(l => l.includes('ENOSPC')).length, 1, 'logged once');
  });
});
