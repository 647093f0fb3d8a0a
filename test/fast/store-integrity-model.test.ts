import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pino from 'pino';
import type { Dispatcher } from 'undici';
import { StorePool } from '../../agent/cache/store-pool';
import type { FileEntry } from '../../agent/catalogue/catalogue';
import { UrlSource } from '../../agent/origin/file-source';
import { createOriginDispatcher } from '../../agent/origin/http-client';
import type { OriginInfo } from '../../agent/origin/origin-info';
import { probeOrigin } from '../../agent/origin/probe';
import { RangeCommitter } from '../../agent/state/range-committer';
import { StateDb } from '../../agent/state/state-db';
import { DownloadSlots } from '../../agent/store/download-slots';
import { nodeFileIo, type FileIo } from '../../agent/store/file-io';
import type { TempFileStore } from '../../agent/store/temp-file-store';
import { ContentHasher } from '../../agent/verify/content-hasher';
import { generateContent, TestOrigin } from '../../tools/test-origin';

/*
 * The integrity oracle: the store, its downloads, the pool, the range committer and a real
 * SQLite file, driven by random steps (reads, evictions, digest mismatches, new versions at
 * the origin, cancels, resumes, restarts from the database, a filling disk) over a disk
 * layer that delays (and so reorders), shortens and fails writes. The origin is real HTTP on
 * 127.0.0.1 and its bytes are known. After every step:
 *   - every byte a read returned is the origin's byte at that offset, of the version the
 *     read was made against;
 *   - every range the store claims, and every range the database holds (synced or not),
 *     is on disk with the origin's bytes;
 *   - no read has waited past its deadlines.
 * Mutation checks (npm run mutants) show which broken promises it catches.
 * Runs: MODEL_RUNS (default 100 in the suite, about 10 s); MODEL_SEED and MODEL_PATH (from a failure's report) replay one;
 * MODEL_NO_SHRINK=1 reports the first failing run as it was.
 */

const KiB = 1024;
const READ_TIMEOUT_MS = 300;
const READ_MAX_WAIT_MS = 1500;
/** A read still unanswered this long after every deadline has hung. */
const HUNG_MS = READ_MAX_WAIT_MS + 2000;
const BOOT = 'model-boot';
const NAME = 'model.bin';
const ID = '0123456789abcdef01234567';

interface DiskFaults {
  /** Each write waits up to this long before it lands: writes in flight overlap and complete out of order. */
  delayMaxMs: number;
  /** Chance that a write lands only a prefix of its bytes, with no error. */
  shortWrites: number;
  /** Chance that a write fails with EIO. */
  eio: number;
}

/** A small seeded generator, so a failing run replays from fast-check's seed. */
function prng (seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function errnoError (code: string): Error {
  return Object.assign(new Error(`${code} (injected)`), { code });
}

/** The first `n` bytes of `buffers`, as views. */
function prefix (buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of buffers) {
    if (n <= 0) break;
    out.push(b.subarray(0, Math.min(n, b.length)));
    n -= b.length;
  }
  return out;
}

/** Node's system calls, with writes delayed, shortened and failed as a filling or failing disk does. */
class FaultyDisk implements FileIo {
  /** A full disk: writes land part of their bytes with no error, then fail with ENOSPC. */
  full = false;
  readonly #rand: () => number;
  constructor (readonly faults: DiskFaults, seed: number) { this.#rand = prng(seed); }

  open = nodeFileIo.open;
  size = nodeFileIo.size;
  truncate = nodeFileIo.truncate;
  read = nodeFileIo.read;
  close = nodeFileIo.close;

  async datasync (fd: number): Promise<void> {
    await this.#latency();
    return nodeFileIo.datasync(fd);
  }

  async #latency (): Promise<void> {
    const delay = Math.floor(this.#rand() * this.faults.delayMaxMs);
    if (delay > 0) await new Promise(resolve => setTimeout(resolve, delay)); // disk latency, injected
  }

  async writev (fd: number, buffers: Buffer[], pos: number): Promise<number> {
    let total = 0;
    for (const b of buffers) total += b.length;
    await this.#latency();
    if (this.#rand() < this.faults.eio) throw errnoError('EIO');
    if (this.full) {
      const landed = Math.floor(this.#rand() * total);
      if (landed === 0) throw errnoError('ENOSPC');
      return nodeFileIo.writev(fd, prefix(buffers, landed), pos);
    }
    if (total > 1 && this.#rand() < this.faults.shortWrites) {
      return nodeFileIo.writev(fd, prefix(buffers, 1 + Math.floor(this.#rand() * (total - 1))), pos);
    }
    return nodeFileIo.writev(fd, buffers, pos);
  }
}

type Step =
  | { k: 'read'; pos: number; len: number; ahead: number }
  | { k: 'evict'; wait: boolean }
  | { k: 'mismatch' }
  | { k: 'newVersion' }
  | { k: 'cancel' }
  | { k: 'resume' }
  | { k: 'fill' }
  | { k: 'commit' }
  | { k: 'sync'; thenDrop: boolean }
  | { k: 'restart' }
  | { k: 'diskFull'; on: boolean }
  | { k: 'pause'; ms: number };

interface Scenario {
  size: number;
  throttle: number;
  digest: 'none' | 'right' | 'wrong';
  disk: DiskFaults;
  diskSeed: number;
  steps: Step[];
}

function stepArb (size: number): fc.Arbitrary<Step> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        k: fc.constant('read' as const), pos: fc.nat(size - 1), len: fc.integer({ min: 1, max: 256 * KiB }), ahead: fc.nat(size),
      }),
    },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('evict' as const), wait: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ k: 'mismatch' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'newVersion' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'cancel' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'resume' as const }) },
    { weight: 2, arbitrary: fc.constant({ k: 'fill' as const }) },
    { weight: 3, arbitrary: fc.constant({ k: 'commit' as const }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('sync' as const), thenDrop: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('diskFull' as const), on: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 80 }) }) }
  );
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 64 * KiB, max: 2048 * KiB }).chain(size => fc.record({
  size: fc.constant(size),
  throttle: fc.constantFrom(4, 16, 64).map(m => m * 1024 * KiB),
  digest: fc.constantFrom('none' as const, 'right' as const, 'wrong' as const),
  disk: fc.record({
    delayMaxMs: fc.integer({ min: 0, max: 30 }),
    shortWrites: fc.constantFrom(0, 0.2, 0.5),
    eio: fc.constantFrom(0, 0, 0.02),
  }),
  diskSeed: fc.nat(),
  steps: fc.array(stepArb(size), { minLength: 4, maxLength: 24 }),
}));

/** The ranges the database holds for the file: committed synced, and unsynced in this boot. */
function databaseRanges (dbFile: string): Array<[number, number]> {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const rows = [
      ...db.prepare('SELECT start, end FROM ranges WHERE file_id = ?').all(ID),
      ...db.prepare('SELECT start, end FROM unsynced_ranges WHERE file_id = ? AND boot_id = ?').all(ID, BOOT),
    ] as Array<{ start: number; end: number }>;
    return rows.map(r => [r.start, r.end]);
  } finally {
    db.close();
  }
}

/**
 * One run: the agent's persistence and store, rebuilt on restart from the same database and
 * cache folder, as the agent does. The current version's content is the oracle.
 */
class World {
  readonly violations: string[] = [];
  /** What the run exercised, so a run that checked nothing shows. */
  readonly seen = { readBytes: 0, failedReads: 0, claimedBytesChecked: 0 };
  readonly #pending = new Set<Promise<void>>();
  readonly #versionOf = new WeakMap<TempFileStore, Buffer>();
  /** Resolved by the store's next write (observer), for reads that retry after a stall. */
  #nextWrite = signal();
  db!: StateDb;
  committer!: RangeCommitter;
  pool!: StorePool;
  store!: TempFileStore;
  entry!: FileEntry;
  content: Buffer;
  version = 1;

  constructor (
    readonly origin: TestOrigin,
    readonly dispatcher: Dispatcher,
    readonly hasher: ContentHasher,
    readonly dir: string,
    readonly disk: FaultyDisk,
    readonly scenario: Scenario
  ) {
    this.content = origin.add(NAME, scenario.size, { throttle: scenario.throttle });
  }

  get dbFile (): string { return path.join(this.dir, 'state.db'); }
  get tempFile (): string { return path.join(this.dir, 'cache', `${ID}.part`); }

  async originInfo (): Promise<OriginInfo> {
    const info = await probeOrigin(this.dispatcher, this.origin.url(NAME), {});
    if (this.scenario.digest === 'none') return { ...info, digest: null };
    const hex = this.scenario.digest === 'right' ? createHash('sha256').update(this.content).digest('hex') : 'ab'.repeat(32);
    return { ...info, digest: { algorithm: 'sha-256', hex, source: 'user' } };
  }

  async start (): Promise<void> {
    await fsp.mkdir(path.join(this.dir, 'cache'), { recursive: true });
    this.db = StateDb.open(this.dbFile).db;
    const origin = await this.originInfo();
    this.entry = {
      id: ID,
      name: NAME,
      url: this.origin.url(NAME),
      headers: {},
      urlCommand: null,
      endpoints: new UrlSource(this.origin.url(NAME), {}),
      folder: null,
      origin,
      addedAt: Date.now(),
      mtimeMs: Date.now(),
    };
    this.db.insertFile({ ...this.entry, urlCommand: null, lastAccessAt: Date.now(), state: 'idle', lastError: null, pinned: false });
    await this.#openPool([], false);
  }

  async #openPool (ranges: Array<[number, number]>, verified: boolean): Promise<void> {
    const log = pino({ level: 'silent' });
    this.committer = new RangeCommitter(this.db, log, BOOT);
    this.pool = new StorePool({
      cacheDir: path.join(this.dir, 'cache'),
      maxBytes: 1024 * 1024 * KiB,
      evictOnClose: false,
      store: {
        dispatcher: this.dispatcher,
        readTimeoutMs: READ_TIMEOUT_MS,
        readMaxWaitMs: READ_MAX_WAIT_MS,
        downloadStallMs: 2000,
        slots: new DownloadSlots(4),
        maxDownloadsPerFile: 3,
        fillMaxBytes: 0,
        hasher: this.hasher,
        fileIo: this.disk,
      },
      db: this.db,
      committer: this.committer,
      log,
      observer: {
        onWrite: () => {
          this.#nextWrite.resolve();
          this.#nextWrite = signal();
        },
      },
      sparseFiles: true,
    });
    this.pool.addResting(ID, this.entry.origin.size, ranges, Date.now(), false, verified);
    await this.#acquire(this.entry);
  }

  async #acquire (entry: FileEntry): Promise<void> {
    const store = await this.pool.acquire(entry);
    this.#versionOf.set(store, this.content);
    this.store = store;
  }

  /**
   * A read through the FUSE read path, checked against the version its store holds. A read
   * may fail (EIO, ETIMEDOUT) but never hang.
   */
  read (pos: number, len: number, ahead: number): void {
    const store = this.store;
    const expected = this.#versionOf.get(store)!;
    const buf = Buffer.alloc(len);
    const began = performance.now();
    const p = new Promise<void>(resolve => {
      const hung = setTimeout(() => {
        this.violations.push(`read of ${len} at ${pos} unanswered after ${HUNG_MS} ms`);
        resolve();
      }, HUNG_MS);
      store.read(buf, len, pos, (err, n) => {
        clearTimeout(hung);
        if (err === null) {
          const want = expected.subarray(pos, Math.min(expected.length, pos + len));
          this.seen.readBytes += n;
          if (n !== want.length) this.violations.push(`read at ${pos} returned ${n} bytes, not ${want.length}`);
          else if (!buf.subarray(0, n).equals(want)) this.violations.push(`read at ${pos}+${n} returned bytes that are not the origin's`);
        } else if ((this.seen.failedReads++, performance.now() - began > HUNG_MS)) {
          this.violations.push(`read at ${pos} answered ${err.errno} only after ${(performance.now() - began).toFixed(0)} ms`);
        }
        resolve();
      }, pos + ahead);
    });
    this.#pending.add(p);
    void p.then(() => this.#pending.delete(p));
  }

  /**
   * Reads the whole file as a program that retries would: a read that timed out because
   * its download was paused (a full disk that has just freed) is tried again after the
   * store's next write, at most `retries` times, so a download that never writes again
   * still fails the run.
   */
  async readWhole (retries = 5): Promise<void> {
    const expected = this.#versionOf.get(this.store)!;
    for (let pos = 0; pos < expected.length; pos += 128 * KiB) {
      for (let attempt = 0; ; attempt++) {
        const len = Math.min(128 * KiB, expected.length - pos);
        const buf = Buffer.alloc(len);
        const wrote = this.#nextWrite.promise;
        const err = await new Promise<Error | null>(resolve => this.store.read(buf, len, pos, e => resolve(e), pos + 4 * len));
        if (err === null) {
          if (!buf.equals(expected.subarray(pos, pos + len))) this.violations.push(`read at ${pos} with faults off returned other bytes`);
          break;
        }
        if (attempt === retries) {
          this.violations.push(`read at ${pos} failed ${retries + 1} times with faults off: ${err.message}`);
          return;
        }
        const timeout = new Promise(resolve => setTimeout(resolve, HUNG_MS).unref());
        await Promise.race([wrote, timeout]);
      }
    }
  }

  async settleReads (): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /**
   * What a kill at this moment would leave: every range the store claims and every range
   * the database holds must be on disk with the origin's bytes. Read in one synchronous turn
   * (the temp file, not the mount), so nothing the store does can fall between.
   */
  checkClaims (label: string): void {
    const expected = this.#versionOf.get(this.store)!;
    let fd: number;
    try {
      fd = fs.openSync(this.tempFile, 'r');
    } catch {
      fd = -1;
    }
    try {
      const check = (who: string, ranges: Array<[number, number]>): void => {
        for (const [s, e] of ranges) {
          if (fd < 0) { this.violations.push(`${label}: ${who} claims ${s}-${e} but there is no temp file`); return; }
          this.seen.claimedBytesChecked += e - s;
          const buf = Buffer.alloc(e - s);
          const n = fs.readSync(fd, buf, 0, e - s, s);
          if (n !== e - s || !buf.equals(expected.subarray(s, e))) {
            const at = firstDifference(buf.subarray(0, n), expected.subarray(s, e));
            this.violations.push(`${label}: ${who} claims ${s}-${e}, but byte ${s + at} on disk is not the origin's`);
            return;
          }
        }
      };
      const claimed = this.store.snapshot(); // null once closed
      if (claimed !== null) check('the store', claimed);
      check('the database', databaseRanges(this.dbFile));
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }

  async apply (step: Step): Promise<void> {
    switch (step.k) {
      case 'read': return this.read(step.pos, step.len, step.ahead);
      case 'evict': {
        const dropped = this.store.discard('evicted by the model');
        if (step.wait) await dropped;
        return;
      }
      case 'mismatch': // what a digest verdict does, not waited on
        this.store.discard('the model says the digest did not match').catch(() => {});
        return;
      case 'cancel': return this.store.cancel('cancelled by the model');
      case 'resume': return this.store.resume();
      case 'fill': return this.store.startDownload(true);
      case 'commit': // the unsynced commit the committer makes every second: a run is shorter than that
        void this.committer.commit(this.store);
        return;
      case 'sync': // the durable commit the committer makes every 30 s, not waited on; an evict may come meanwhile
        void this.committer.commit(this.store, true);
        if (step.thenDrop) this.store.discard('evicted while a sync ran').catch(() => {});
        return;
      case 'pause': return new Promise(resolve => setTimeout(resolve, step.ms));
      case 'diskFull':
        this.disk.full = step.on;
        if (!step.on) this.pool.quota.poke(); // space freed: waiting writes look again
        return;
      case 'restart': return this.restart();
      case 'newVersion': return this.newVersion();
    }
  }

  /** As the agent stops and starts: close everything (committing), reopen from the database. */
  async restart (): Promise<void> {
    await this.pool.closeAll('model restart');
    this.committer.stop();
    this.db.close();
    this.db = StateDb.open(this.dbFile).db;
    const record = this.db.loadFiles(BOOT).find(r => r.id === ID)!;
    await this.#openPool(record.ranges, record.verified);
  }

  /** The origin serves another version; the model adopts it as the agent does, with an open arriving meanwhile. */
  async newVersion (): Promise<void> {
    this.version++;
    const next = generateContent(`${NAME} v${this.version}`, this.scenario.size);
    this.content = this.origin.add(NAME, next, { throttle: this.scenario.throttle });
    const origin = await this.originInfo();
    const entry = { ...this.entry, origin };
    const dropping = this.pool.drop(ID, 'the file changed at the origin');
    const opening = this.#acquire(entry); // must wait for the drop, and get a store of the new version
    await dropping;
    this.db.replaceOrigin(ID, origin, Date.now());
    this.entry = entry;
    await opening;
  }

  async close (): Promise<void> {
    await this.settleReads();
    await this.pool.closeAll('model done');
    this.committer.stop();
    this.db.close();
  }
}

/** A promise and the function that resolves it (Node 20 has no Promise.withResolvers). */
function signal (): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>(_resolve => { resolve = _resolve; });
  return { promise, resolve };
}

function firstDifference (a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

describe('the store never serves or claims a byte that is not the origin\'s (model, injected disk faults)', () => {
  let origin: TestOrigin;
  let dispatcher: Dispatcher;
  let root: string;
  const hasher = new ContentHasher();
  before(async () => {
    origin = await TestOrigin.start();
    dispatcher = createOriginDispatcher();
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'fst-model-'));
  });
  after(async () => {
    await dispatcher.close();
    await hasher.close();
    await origin.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('under random reads, drops, new versions, restarts and a filling disk', { timeout: 600_000 }, async () => {
    let run = 0;
    const totals = { runs: 0, readBytes: 0, failedReads: 0, claimedBytesChecked: 0 };
    const seed = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED);
    await fc.assert(fc.asyncProperty(scenarioArb, async scenario => {
      const dir = path.join(root, `run-${run++}`);
      const world = new World(origin, dispatcher, hasher, dir, new FaultyDisk(scenario.disk, scenario.diskSeed), scenario);
      try {
        await world.start();
        for (const [i, step] of scenario.steps.entries()) {
          await world.apply(step);
          world.checkClaims(`after step ${i} (${step.k})`);
          if (world.violations.length > 0) break;
        }
        await world.settleReads();
        world.checkClaims('after the reads settled');
        // Disk faults off, the file resumed: every byte arrives, byte-exact (a wrong digest fails for good instead).
        world.disk.full = false;
        world.disk.faults.eio = 0;
        world.pool.quota.poke();
        if (scenario.digest !== 'wrong') {
          world.store.resume();
          await world.readWhole();
          world.checkClaims('after reading it whole');
        }
        assert.deepEqual(world.violations, []);
        totals.runs++;
        totals.readBytes += world.seen.readBytes;
        totals.failedReads += world.seen.failedReads;
        totals.claimedBytesChecked += world.seen.claimedBytesChecked;
      } finally {
        await world.close().catch(() => {});
        await fsp.rm(dir, { recursive: true, force: true });
      }
    }), {
      numRuns: Number(process.env.MODEL_RUNS ?? 100),
      seed,
      path: process.env.MODEL_PATH,
      endOnFailure: process.env.MODEL_NO_SHRINK !== undefined,
      includeErrorInReport: true,
    });
    // A model that read and checked nothing would pass anything.
    assert.ok(totals.readBytes > 0 && totals.claimedBytesChecked > 0, JSON.stringify(totals));
    console.log(`# model: ${JSON.stringify(totals)}`);
  });
});
