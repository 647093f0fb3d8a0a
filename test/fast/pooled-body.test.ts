import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Agent } from 'undici';
import { BufferPool } from '../../agent/buffer-pool';
import { requestPooled, type PooledResponse } from '../../agent/origin/pooled-body';
import { TestOrigin } from '../../tools/test-origin';

/** A pool that counts what is out: every buffer taken must come back once its chunks are released. */
class CountingPool extends BufferPool {
  out = 0;
  override take (): Buffer { this.out++; return super.take(); }
  override give (buf: Buffer): void { this.out--; super.give(buf); }
}

const MiB = 1024 * 1024;

describe('bodies in pooled buffers (agent/origin/pooled-body)', () => {
  let origin: TestOrigin;
  const dispatcher = new Agent();
  before(async () => { origin = await TestOrigin.start(); });
  after(async () => {
    await dispatcher.close();
    await origin.close();
  });

  const get = (name: string, pool: BufferPool, signal = new AbortController().signal): Promise<PooledResponse> =>
    requestPooled(dispatcher, origin.url(name), { headers: {}, bodyTimeoutMs: 5000, signal, pool, highWater: MiB });

  it('delivers the origin\'s bytes in order, and every buffer goes back to the pool', async () => {
    const content = origin.add('whole.bin', 3 * MiB + 123);
    const pool = new CountingPool(64 * 1024, 8);
    const res = await get('whole.bin', pool);
    assert.equal(res.statusCode, 200);
    const got: Buffer[] = [];
    for (let c = await res.next(); c !== null; c = await res.next()) {
      assert.ok(c.data.length <= pool.size, 'a chunk never spans two buffers');
      got.push(Buffer.from(c.data));
      c.release();
    }
    res.drop();
    assert.ok(Buffer.concat(got).equals(content), 'the same bytes');
    assert.equal(pool.out, 0, 'every buffer back');
  });

  it('a slow consumer holds no more than the high-water mark in buffers, and still gets every byte', async () => {
    const content = origin.add('slow-consumer.bin', 8 * MiB);
    const pool = new CountingPool(256 * 1024, 64);
    const res = await get('slow-consumer.bin', pool);
    const got: Buffer[] = [];
    let most = 0;
    for (let c = await res.next(); c !== null; c = await res.next()) {
      await new Promise(resolve => setTimeout(resolve, 2)); // a disk slower than the socket
      most = Math.max(most, pool.out);
      got.push(Buffer.from(c.data));
      c.release();
    }
    assert.ok(Buffer.concat(got).equals(content));
    // The mark (1 MiB) in 256 KiB buffers, the one being filled, one a socket read may overrun into, and the one held.
    assert.ok(most <= 7, `at most 7 buffers out at once, saw ${most}`);
    assert.equal(pool.out, 0);
  });

  it('a connection dropped mid-body: the bytes before it, then the error', async () => {
    const content = origin.add('dropped.bin', 2 * MiB, { dropAt: MiB });
    const pool = new CountingPool(64 * 1024, 8);
    const res = await get('dropped.bin', pool);
    const got: Buffer[] = [];
    await assert.rejects(async () => {
      for (let c = await res.next(); c !== null; c = await res.next()) {
        got.push(Buffer.from(c.data));
        c.release();
      }
    });
    res.drop();
    const before = Buffer.concat(got);
    assert.ok(before.length <= MiB && before.equals(content.subarray(0, before.length)), 'a prefix of the origin\'s bytes');
    assert.equal(pool.out, 0);
  });

  it('drop mid-body stops it and gives back the buffers; an abort fails the wait', async () => {
    origin.add('dropped-by-us.bin', 16 * MiB, { throttle: 4 * MiB });
    const pool = new CountingPool(64 * 1024, 8);
    const res = await get('dropped-by-us.bin', pool);
    const first = await res.next();
    assert.ok(first !== null);
    res.drop();
    first.release();
    assert.equal(await res.next(), null, 'nothing after a drop');
    assert.equal(pool.out, 0);

    const abort = new AbortController();
    const res2 = await get('dropped-by-us.bin', pool, abort.signal);
    const waiting = res2.next().then(async c => { c?.release(); return await res2.next(); });
    abort.abort();
    await assert.rejects(waiting);
    res2.drop();
    assert.equal(pool.out, 0);
  });
});
