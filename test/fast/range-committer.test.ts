import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { RangeCommitter, type CommitSource } from '../../agent/state/range-committer';
import { StateDb } from '../../agent/state/state-db';

const MiB = 1024 * 1024;

/** A store whose sync the test finishes (or fails) by hand, and which records what was saved. */
class ManualSource implements CommitSource {
  readonly id: string;
  ranges: Array<[number, number]> = [];
  syncs = 0;
  #finish: Array<(err?: Error) => void> = [];
  #onSync: (() => void) | null = null;

  constructor (id: string) { this.id = id; }

  syncAndSave (save: (ranges: Array<[number, number]>) => void): Promise<void> {
    this.syncs++;
    const snapshot = this.ranges.map(r => [...r] as [number, number]);
    this.#onSync?.();
    return new Promise<void>((resolve, reject) => {
      this.#finish.push(err => {
        if (err !== undefined) return reject(err);
        save(snapshot);
        resolve();
      });
    });
  }

  /** Resolves at the next sync the committer starts. */
  nextSync (): Promise<void> {
    return new Promise(resolve => { this.#onSync = () => { this.#onSync = null; resolve(); }; });
  }

  finishSync (err?: Error): void { this.#finish.shift()!(err); }

  snapshot (): Array<[number, number]> { return this.ranges.map(r => [...r] as [number, number]); }
}

describe('RangeCommitter', () => {
  let dir: string;
  let db: StateDb;
  let committer: RangeCommitter;
  // The committer's timer does not hold the process open (unref): this does, while tests wait on it.
  let keepAlive: NodeJS.Timeout;
  before(async () => {
    keepAlive = setInterval(() => {}, 60_000);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-commit-'));
    db = StateDb.open(path.join(dir, 'state.db')).db;
    committer = new RangeCommitter(db, pino({ level: 'silent' }));
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      db.insertFile({
        id,
        name: id,
        url: `http://127.0.0.1/${id}`,
        headers: {},
        urlCommand: null,
        folder: null,
        origin: { size: 64 * MiB, etag: null, lastModified: null, acceptRanges: true, digest: null },
        addedAt: 0,
        lastAccessAt: 0,
        mtimeMs: 0,
        state: 'idle',
        lastError: null,
        pinned: false,
      });
    }
  });
  after(async () => {
    clearInterval(keepAlive);
    committer.stop();
    db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const saved = (id: string): Array<[number, number]> => db.loadFiles(null).find(f => f.id === id)!.ranges;

  it('commits at once after 16 MiB of writes, and only what the sync covered', async () => {
    const s = new ManualSource('a');
    s.ranges = [[0, 16 * MiB]];
    const syncing = s.nextSync();
    committer.noteWrite(s, 16 * MiB);
    await syncing;
    s.ranges = [[0, 17 * MiB]]; // written after the snapshot: not durable yet
    assert.deepEqual(saved('a'), [], 'nothing is claimed before the sync ends');
    s.finishSync();
    await committer.commit(s);
    assert.deepEqual(saved('a'), [[0, 16 * MiB]]);
  });

  it('commits smaller writes within a second', async () => {
    const s = new ManualSource('b');
    s.ranges = [[0, MiB]];
    const syncing = s.nextSync();
    const began = performance.now();
    committer.noteWrite(s, MiB);
    await syncing;
    assert.ok(performance.now() - began < 1500);
    s.finishSync();
    await committer.commit(s);
    assert.deepEqual(saved('b'), [[0, MiB]]);
  });

  it('runs one sync per file at a time; writes during it are committed right after', async () => {
    const s = new ManualSource('c');
    s.ranges = [[0, MiB]];
    committer.noteWrite(s, MiB);
    const first = committer.commit(s);
    assert.equal(s.syncs, 1);
    s.ranges = [[0, 2 * MiB]];
    committer.noteWrite(s, MiB);
    const second = committer.commit(s);
    assert.equal(s.syncs, 1, 'no second sync while the first runs');
    const secondSync = s.nextSync();
    s.finishSync();
    await first;
    await secondSync;
    s.finishSync();
    await second;
    assert.deepEqual(saved('c'), [[0, 2 * MiB]]);
  });

  it('with a boot id, commits written ranges without a sync, trusted in this boot only, and syncs them when asked', async () => {
    const stamped = new RangeCommitter(db, pino({ level: 'silent' }), 'boot-1');
    try {
      const s = new ManualSource('e');
      s.ranges = [[0, 4 * MiB]];
      stamped.noteWrite(s, 4 * MiB);
      await stamped.commit(s);
      assert.equal(s.syncs, 0, 'no fdatasync on the write path');
      const claims = (boot: string): Array<[number, number]> => db.loadFiles(boot).find(f => f.id === 'e')!.ranges;
      assert.deepEqual(claims('boot-1'), [[0, 4 * MiB]], 'after the agent dies, in the same boot: the page cache kept them');
      assert.deepEqual(claims('boot-2'), [], 'after a reboot: nothing was synced');
      s.ranges = [[0, 6 * MiB]];
      const durable = stamped.commit(s, true); // as when the file closes
      assert.equal(s.syncs, 1);
      s.finishSync();
      await durable;
      assert.deepEqual(claims('boot-2'), [[0, 6 * MiB]]);
      assert.deepEqual(claims('boot-1'), [[0, 6 * MiB]]);
    } finally {
      stamped.stop();
    }
  });

  it('a failed sync claims nothing', async () => {
    const s = new ManualSource('d');
    s.ranges = [[0, MiB]];
    committer.noteWrite(s, MiB);
    const p = committer.commit(s);
    s.finishSync(new Error('EIO: the disk went away'));
    await p;
    assert.deepEqual(saved('d'), []);
  });
});
