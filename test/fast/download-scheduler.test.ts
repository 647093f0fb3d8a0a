import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DownloadSlots } from '../../agent/store/download-slots';
import { SchedulerHarness, settle } from '../helpers/scheduler-harness';

const MiB = 1024 * 1024;

describe('DownloadScheduler', () => {
  it('starts one demand download at a read\'s first missing byte, claiming to the end, bounded by its window', () => {
    const h = new SchedulerHarness(100 * MiB);
    h.read(0, 128 * 1024, 2 * MiB);
    assert.deepEqual(h.claims(), [[0, 100 * MiB]]);
    const [d] = h.running;
    assert.equal(d.kind, 'demand');
    assert.equal(d.allowedEnd, 2 * MiB);
    assert.equal(h.state, 'downloading');
  });

  it('serves a read within reach from the download already there, moving its bound instead of connecting again', () => {
    const h = new SchedulerHarness(100 * MiB);
    h.read(0, 128 * 1024, 2 * MiB);
    h.read(3 * MiB, 128 * 1024, 5 * MiB);
    assert.equal(h.downloads.length, 1);
    assert.equal(h.running[0].allowedEnd, 5 * MiB);
  });

  it('splits the claim for a far seek: the new download takes the rest, the old one stops where it begins', () => {
    const h = new SchedulerHarness(200 * MiB);
    h.read(0, 128 * 1024, 2 * MiB);
    h.read(100 * MiB, 128 * 1024, 101 * MiB);
    assert.deepEqual(h.claims(), [[0, 100 * MiB], [100 * MiB, 200 * MiB]]);
  });

  it('reaches further on a fast file: one second at its current rate', () => {
    const h = new SchedulerHarness(200 * MiB, { bytesPerSecond: 50 * MiB });
    h.read(0, 128 * 1024, 2 * MiB);
    h.read(40 * MiB, 128 * 1024, 41 * MiB);
    assert.equal(h.downloads.length, 1, 'within 1 s at 50 MiB/s: no split');
    h.read(60 * MiB, 128 * 1024, 61 * MiB);
    assert.equal(h.downloads.length, 2);
  });

  it('never splits a claim for read-ahead: it only moves the bound of the download there', () => {
    const h = new SchedulerHarness(200 * MiB);
    h.read(0, 128 * 1024, 1 * MiB);
    h.running[0].receive(1 * MiB);
    h.read(0, 128 * 1024, 150 * MiB); // bytes present: read-ahead to 150 MiB
    assert.deepEqual(h.claims(), [[1 * MiB, 200 * MiB]]);
    assert.equal(h.running[0].allowedEnd, 150 * MiB);
  });

  it('never splits when the origin ignores Range', () => {
    const h = new SchedulerHarness(200 * MiB, { acceptRanges: false });
    h.read(0, 128 * 1024, 1 * MiB);
    h.read(150 * MiB, 128 * 1024, 151 * MiB);
    assert.equal(h.downloads.length, 1);
    assert.equal(h.running[0].allowedEnd, 151 * MiB);
  });

  it('covers a read behind every claim only up to the next claim', () => {
    const h = new SchedulerHarness(200 * MiB);
    h.read(100 * MiB, 128 * 1024, 101 * MiB);
    h.read(10 * MiB, 128 * 1024, 11 * MiB);
    assert.deepEqual(h.claims(), [[10 * MiB, 100 * MiB], [100 * MiB, 200 * MiB]]);
  });

  it('fills a small file whole once opened, hole by hole, each byte fetched once', async () => {
    const h = new SchedulerHarness(10 * MiB, { fillMaxBytes: 16 * MiB });
    h.present.add(2 * MiB, 3 * MiB); // already on disk
    h.open();
    assert.deepEqual(h.claims(), [[0, 10 * MiB]]);
    assert.equal(h.running[0].kind, 'fill');
    while (h.running.length > 0) {
      for (const d of h.running) d.receive(512 * 1024);
      await settle();
    }
    assert.equal(h.state, 'complete');
    assert.equal(h.present.bytes, 10 * MiB);
    assert.equal(h.fetched.bytes, 9 * MiB);
    assert.equal(h.fetchedTwice, 0);
  });

  it('paused: stops the fill, starts none at open, serves a read only as far as it waits; unpaused, the fill goes on', async () => {
    const h = new SchedulerHarness(64 * MiB, { fillMaxBytes: 128 * MiB });
    h.open();
    const fill = h.running[0];
    assert.equal(fill.kind, 'fill');
    h.scheduler.pause();
    assert.ok(fill.aborted, 'the fill running for nobody stopped');
    await settle();
    h.open();
    assert.equal(h.running.length, 0, 'an open starts no fill while paused');
    h.read(32 * MiB, 128 * 1024, 60 * MiB); // a sequential reader's window: 28 MiB
    assert.equal(h.running.length, 1);
    const [demand] = h.running;
    assert.equal(demand.kind, 'demand');
    assert.equal(demand.allowedEnd, 33 * MiB, 'bounded to 1 MiB past the read, not the reader\'s window nor the whole file');
    h.scheduler.readAhead(33 * MiB, 60 * MiB);
    assert.equal(demand.allowedEnd, 33 * MiB, 'no read-ahead for nobody while paused');
    h.scheduler.unpause();
    assert.ok(h.running.some(d => d.allowedEnd === 64 * MiB), 'the fill asked for at open goes on');
  });

  it('holds the per-file cap, and a waiting read stops a fill download to get a connection', async () => {
    const h = new SchedulerHarness(100 * MiB, { maxPerFile: 1, fillMaxBytes: 200 * MiB });
    h.open();
    const fill = h.running[0];
    assert.equal(fill.kind, 'fill');
    const r = h.read(50 * MiB, 128 * 1024, 51 * MiB);
    // The fill is within reach of nothing: the read stops it and starts once it has ended.
    assert.ok(fill.aborted, 'the fill download was stopped');
    await settle();
    assert.equal(h.scheduler.active, 1);
    const demand = h.running[0];
    assert.equal(demand.position, 50 * MiB);
    demand.receive(128 * 1024);
    assert.equal(r.outcome, 'ok');
  });

  it('gives a starved read the connection once the reads holding it are served', async () => {
    const h = new SchedulerHarness(200 * MiB, { maxPerFile: 1 });
    const first = h.read(100 * MiB, 128 * 1024, 101 * MiB);
    const behind = h.read(0, 128 * 1024, 1 * MiB); // no claim holds it, and the file's one connection is busy
    assert.deepEqual(h.claims(), [[100 * MiB, 200 * MiB]]);
    h.running[0].receive(128 * 1024);
    assert.equal(first.outcome, 'ok');
    await settle();
    assert.equal(h.scheduler.active, 1, 'the cap holds');
    assert.equal(h.running[0].position, 0, 'the connection moved to the starved read');
    h.running[0].receive(128 * 1024);
    assert.equal(behind.outcome, 'ok');
    assert.equal(h.fetchedTwice, 0);
  });

  it('holds the overall cap across files: demand takes a fill\'s slot, fill waits for a free one', async () => {
    const slots = new DownloadSlots(1);
    const a = new SchedulerHarness(10 * MiB, { slots, fillMaxBytes: 16 * MiB });
    const b = new SchedulerHarness(10 * MiB, { slots });
    a.open();
    assert.equal(a.running[0].kind, 'fill');
    const r = b.read(0, 4096, 4096);
    assert.equal(b.scheduler.active, 0, 'no slot yet: the fill still holds it');
    assert.ok(a.downloads[0].aborted, 'the fill was asked to stop');
    await settle();
    assert.equal(slots.active, 1);
    assert.equal(b.scheduler.active, 1);
    b.running[0].receive(4096);
    assert.equal(r.outcome, 'ok');
    // b reads on to its end; a's fill gets the slot once b's download has ended.
    const rest = b.read(4096, 10 * MiB - 4096);
    while (b.running.length > 0) { b.running[0].receive(MiB); await settle(); }
    assert.equal(rest.outcome, 'ok');
    assert.equal(a.scheduler.active, 1);
    assert.equal(a.running[0].kind, 'fill');
  });

  it('a file asking for its first connection is starved, not stalled, however old its last byte: it takes a stalled one', async () => {
    const slots = new DownloadSlots(1);
    const stalled = new SchedulerHarness(10 * MiB, { slots });
    stalled.read(0, 4096, 4096);
    stalled.lastProgressAt = performance.now() - 10_000;
    const waited = new SchedulerHarness(10 * MiB, { slots });
    waited.lastProgressAt = performance.now() - 10_000; // opened long ago, never had a connection
    const r = waited.read(0, 4096, 4096);
    await settle();
    assert.equal(waited.scheduler.active, 1, 'it took the stalled file\'s connection');
    waited.running[0].receive(4096);
    assert.equal(r.outcome, 'ok');
    // The stalled file, its connection taken, asks again: it is stalled, and takes nothing back.
    stalled.read(8192, 4096, 4096);
    await settle();
    assert.equal(stalled.scheduler.active, 0, 'stalled files do not trade connections');
  });

  it('never lets stalled files starve a healthy one: the download stalled longest gives way', async () => {
    const slots = new DownloadSlots(2);
    const stalled = [new SchedulerHarness(10 * MiB, { slots }), new SchedulerHarness(10 * MiB, { slots })];
    for (const h of stalled) {
      h.read(0, 4096, 4096);
      h.lastProgressAt = performance.now() - 10_000; // the file brought nothing for 10 s
    }
    const healthy = new SchedulerHarness(10 * MiB, { slots });
    const r = healthy.read(0, 4096, 4096);
    await settle();
    assert.equal(healthy.scheduler.active, 1, 'the healthy file got a connection');
    assert.equal(slots.active, 2, 'the cap holds');
    healthy.running[0].receive(4096);
    assert.equal(r.outcome, 'ok');
    assert.equal(stalled.filter(h => h.scheduler.active === 0).length, 1, 'one stalled file gave its connection');
  });

  it('fails the file and every waiting read on a final error, stops its other downloads, and tries again when opened', async () => {
    const h = new SchedulerHarness(200 * MiB);
    const r1 = h.read(0, 4096, 4096);
    h.read(100 * MiB, 4096, 100 * MiB + 4096);
    const [d1, d2] = h.running;
    d1.fail();
    await settle();
    assert.equal(h.state, 'error');
    assert.ok(r1.outcome instanceof Error);
    assert.ok(d2.aborted, 'the other download was stopped');
    assert.equal(h.read(0, 4096).outcome instanceof Error, true, 'reads fail at once');
    h.open();
    const again = h.read(0, 4096, 4096);
    assert.equal(h.scheduler.active, 1);
    h.running[0].receive(4096);
    assert.equal(again.outcome, 'ok');
  });

  it('starts nothing while cancelled, and again after resume', async () => {
    const h = new SchedulerHarness(10 * MiB, { fillMaxBytes: 16 * MiB });
    h.open();
    h.cancel();
    await settle();
    assert.equal(h.scheduler.active, 0);
    h.open();
    h.read(0, 4096, MiB);
    assert.equal(h.scheduler.active, 0);
    h.resume();
    assert.equal(h.scheduler.active, 1);
  });

  it('starts nothing while bytes are being dropped, then covers the reads that came meanwhile', async () => {
    const h = new SchedulerHarness(10 * MiB);
    let dropped!: () => void;
    h.scheduler.reset(new Promise<void>(resolve => { dropped = resolve; }));
    const r = h.read(0, 4096, 4096);
    await settle();
    assert.equal(h.scheduler.active, 0);
    dropped();
    await settle();
    assert.equal(h.scheduler.active, 1);
    h.running[0].receive(4096);
    assert.equal(r.outcome, 'ok');
  });
});

describe('DownloadScheduler: a sequential reader faster than one connection', () => {
  const MB = 1_000_000;

  /** A reader that always waits at the front of the file, and a clock moved a second at a time. */
  function reader (maxPerFile = 4): { h: SchedulerHarness; second: (bytesPerConnection: number) => Promise<void> } {
    let now = 0;
    const h = new SchedulerHarness(4096 * MiB, { now: () => now, maxPerFile });
    const waitAtFront = (): void => {
      const front = h.present.firstMissing(0, h.size);
      h.read(front, 128 * 1024, front + 64 * MiB);
    };
    waitAtFront();
    return {
      h,
      second: async bytesPerConnection => {
        now += 1000;
        let total = 0;
        for (const d of h.running) total += d.receive(bytesPerConnection);
        h.bytesPerSecond = total;
        await settle(); // downloads that finished their chunk have ended
        waitAtFront();
      },
    };
  }

  it('adds connections, each over its own claim ahead of the reader, while each one raises the rate', async () => {
    const { h, second } = reader();
    await second(50 * MB); // the reader waits at the front: the clock starts
    assert.equal(h.running.length, 1);
    await second(50 * MB); // a second at one connection: the baseline
    assert.equal(h.running.length, 2, 'a second connection');
    await second(50 * MB); // 100 MB/s against 50: keep it, add another
    assert.equal(h.running.length, 3);
    await second(50 * MB);
    assert.equal(h.running.length, 4, 'up to the per-file cap');
    await second(50 * MB);
    assert.equal(h.running.length, 4);
    const claims = h.claims();
    for (let i = 1; i < claims.length; i++) assert.ok(claims[i - 1][1] <= claims[i][0], `claims do not overlap: ${JSON.stringify(claims)}`);
    assert.equal(h.fetchedTwice, 0, 'the origin sent no byte twice');
    assert.ok(h.running.every(d => d.allowedEnd >= h.present.firstMissing(0, h.size) + 64 * MiB), 'all run on past the reader\'s window');
  });

  it('gives a connection back when adding it did not raise the rate (the origin or the link is the limit)', async () => {
    const { h, second } = reader();
    await second(50 * MB);
    await second(50 * MB);
    assert.equal(h.running.length, 2);
    await second(25 * MB); // two connections, 50 MB/s in all: no gain
    assert.equal(h.scheduler.parallel, 1, 'given back');
    for (let i = 0; i < 5; i++) await second(25 * MB);
    assert.equal(h.scheduler.parallel, 1, 'and not tried again at once');
    assert.equal(h.fetchedTwice, 0);
  });

  it('starts no extra connection while the file\'s bytes are being dropped, and forgets the reader\'s', async () => {
    const { h, second } = reader();
    await second(50 * MB);
    await second(50 * MB);
    assert.equal(h.running.length, 2);
    let dropped!: () => void;
    h.scheduler.reset(new Promise<void>(resolve => { dropped = resolve; }));
    const before = h.downloads.length;
    await settle(); // the stopped downloads end, and the scheduler looks for work
    assert.equal(h.running.length, 0);
    assert.equal(h.downloads.length, before, 'nothing started while bytes were being dropped');
    assert.equal(h.scheduler.parallel, 1);
    dropped();
    await settle();
  });

  it('never adds one when the origin ignores Range', () => {
    let now = 0;
    const h = new SchedulerHarness(1024 * MiB, { now: () => now, acceptRanges: false });
    for (let i = 0; i < 4; i++) {
      h.read(h.present.firstMissing(0, h.size), 128 * 1024, 64 * MiB);
      now += 1000;
      for (const d of h.running) d.receive(MiB);
    }
    assert.equal(h.downloads.length, 1);
  });
});
