import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DownloadSlots } from '../../agent/store/download-slots';
import { SchedulerHarness, settle } from '../helpers/scheduler-harness';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Big enough that seeks land beyond a download's reach (4 MiB) and claims split. */
const SIZE = 48 * MiB;
const MAX_PER_FILE = 2;
const MAX_SLOTS = 3;

type Command =
  | { t: 'read'; file: number; offset: number; len: number; ahead: number }
  | { t: 'progress'; file: number; pick: number; bytes: number }
  | { t: 'fail'; file: number; pick: number }
  | { t: 'open'; file: number; all: boolean }
  | { t: 'cancel'; file: number }
  | { t: 'resume'; file: number }
  /** A second passes: lets the scheduler add or give back a sequential reader's extra connections. */
  | { t: 'tick'; file: number; rate: number };

const file = fc.integer({ min: 0, max: 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('read' as const),
      file,
      offset: fc.integer({ min: 0, max: SIZE - 1 }),
      len: fc.integer({ min: 1, max: 256 * KiB }),
      ahead: fc.integer({ min: 0, max: 16 * MiB }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ t: fc.constant('progress' as const), file, pick: fc.nat(), bytes: fc.integer({ min: 1, max: 8 * MiB }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fail' as const), file, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('open' as const), file, all: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel' as const), file }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('resume' as const), file }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('tick' as const), file, rate: fc.integer({ min: 0, max: 4 * MiB }) }) }
);

/** The scheduler's clock in these runs: moved only by `tick`. */
const clock = { now: 0 };

function apply (files: SchedulerHarness[], c: Command): void {
  const h = files[c.file];
  switch (c.t) {
    case 'read': h.read(c.offset, c.len, c.offset + c.len + c.ahead); break;
    case 'progress': { const r = h.running; if (r.length > 0) r[c.pick % r.length].receive(c.bytes); break; }
    case 'fail': { const r = h.running; if (r.length > 0) r[c.pick % r.length].fail(); break; }
    case 'open': h.open(c.all); break;
    case 'cancel': h.cancel(); break;
    case 'resume': h.resume(); break;
    case 'tick': clock.now += 1000; h.bytesPerSecond = c.rate; break;
  }
}

/** What must hold after every step, whatever came before. */
function checkInvariants (files: SchedulerHarness[], slots: DownloadSlots, maxPerFile = MAX_PER_FILE): void {
  assert.ok(slots.active <= MAX_SLOTS, `connections across files: ${slots.active} > ${MAX_SLOTS}`);
  for (const h of files) {
    const claims = h.claims();
    const whole = claims.every(([s, e]) => Number.isInteger(s) && Number.isInteger(e));
    assert.ok(whole, `claims are whole byte offsets: ${JSON.stringify(claims)}`);
    for (let i = 1; i < claims.length; i++) {
      assert.ok(claims[i - 1][1] <= claims[i][0], `claims overlap: ${JSON.stringify(claims)}`);
    }
    assert.ok(h.scheduler.active <= maxPerFile, `connections of one file: ${h.scheduler.active}`);
    assert.equal(h.fetchedTwice, 0, 'a byte was fetched twice');
    // A read a program waits on comes before read-ahead and fill: once things settle, no
    // waiting read is left without a download while a fill download holds a connection
    // it could have taken: its own file's, or another file's when every connection is
    // taken and its own file is below its cap.
    const unserved = h.waitingReads().filter(r => h.scheduler.claimant(h.present.firstMissing(r.offset, r.end)) === undefined);
    if (unserved.length === 0) continue;
    const fillHere = h.running.some(d => d.kind === 'fill');
    const fillElsewhere = h.scheduler.active < maxPerFile && slots.active >= MAX_SLOTS && files.some(
      o => o.running.some(d => d.kind === 'fill')
    );
    assert.ok(!fillHere && !fillElsewhere, `a waiting read at ${unserved[0].offset} has no download while a fill runs`);
  }
}

/** With the origin healthy from now on, every waiting read must be served: no read hangs. */
async function drainAndCheckLiveness (files: SchedulerHarness[]): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const running = files.flatMap(h => h.running);
    if (running.length === 0) break;
    for (const d of running) d.receive(8 * MiB);
    await settle();
  }
  for (const h of files) {
    const waiting = h.waitingReads();
    assert.equal(
      waiting.length,
      0,
      `reads left waiting with the origin healthy: ${JSON.stringify(waiting.map(r => [r.offset, r.end]))} (state ${h.state})`
    );
  }
}

describe('DownloadScheduler against a model, over random reads, seeks, progress, failures and cancels', () => {
  it('keeps claims disjoint, caps connections, fetches each byte once, serves waiting reads first, leaves none hanging', async () => {
    await fc.assert(fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 60 }), async commands => {
      const slots = new DownloadSlots(MAX_SLOTS);
      const files = [
        new SchedulerHarness(SIZE, { slots, maxPerFile: MAX_PER_FILE, fillMaxBytes: 16 * MiB, now: () => clock.now }),
        new SchedulerHarness(SIZE, { slots, maxPerFile: MAX_PER_FILE, fillMaxBytes: 16 * MiB, now: () => clock.now }),
      ];
      for (const c of commands) {
        apply(files, c);
        await settle();
        checkInvariants(files, slots);
      }
      await drainAndCheckLiveness(files);
      for (const h of files) {
        for (const r of h.reads) {
          if (r.outcome === 'ok') {
            assert.ok(
              h.present.contains(r.offset, r.end),
              'a read was served before its bytes were there'
            );
          }
        }
      }
    }), { numRuns: 300 });
  });

  it('keeps every rule while it adds and gives back connections for a sequential reader the connections cannot keep up with', async () => {
    const size = 256 * MiB;
    const perFile = 4;
    // A reader at the front of file 0 (what makes the scheduler widen), seconds passing at
    // random rates, progress, failures and stray reads of both files.
    const step = fc.oneof(
      { weight: 4, arbitrary: fc.record({ t: fc.constant('front' as const), ahead: fc.integer({ min: MiB, max: 64 * MiB }) }) },
      {
        weight: 6,
        arbitrary: fc.record({ t: fc.constant('progress' as const), file, pick: fc.nat(), bytes: fc.integer({ min: 1, max: 16 * MiB }) }),
      },
      { weight: 3, arbitrary: fc.record({ t: fc.constant('tick' as const), file, rate: fc.integer({ min: 0, max: 32 * MiB }) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          t: fc.constant('read' as const),
          file,
          offset: fc.integer({ min: 0, max: size - 1 }),
          len: fc.constant(4096),
          ahead: fc.constant(0),
        }),
      },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('fail' as const), file, pick: fc.nat() }) }
    );
    let widened = 0;
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 80 }), async steps => {
      const slots = new DownloadSlots(MAX_SLOTS);
      const opts = { slots, maxPerFile: perFile, now: () => clock.now };
      const files = [0, 1].map(() => new SchedulerHarness(size, opts));
      for (const s of steps) {
        if (s.t === 'front') {
          const front = files[0].present.firstMissing(0, size);
          if (front >= 0 && files[0].state !== 'error') files[0].read(front, 128 * KiB, front + s.ahead);
        } else {
          apply(files, s);
        }
        await settle();
        if (files[0].scheduler.parallel > 1) widened++;
        checkInvariants(files, slots, perFile);
      }
      await drainAndCheckLiveness(files);
    }), { numRuns: 300 });
    assert.ok(widened > 0, 'some runs added connections');
  });
});
