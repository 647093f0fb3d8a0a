import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { Dispatcher } from 'undici';
import { CacheQuota } from '../../agent/cache/cache-quota';
import type { FsError } from '../../agent/errors';
import { createOriginDispatcher } from '../../agent/origin/http-client';
import { UrlSource } from '../../agent/origin/file-source';
import { ContentHasher } from '../../agent/verify/content-hasher';
import { probeOrigin } from '../../agent/origin/probe';
import { DownloadSlots } from '../../agent/store/download-slots';
import type { StoreObserver, StoreOptions } from '../../agent/store/store-contract';
import { TempFileStore } from '../../agent/store/temp-file-store';
import { generateContent, TestOrigin, type Faults } from '../../tools/test-origin';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Reads [pos, pos+len) through the store's FUSE read path. */
function readAt (store: TempFileStore, pos: number, len: number, aheadEnd = 0): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  return new Promise((resolve, reject) => {
    store.read(buf, len, pos, (err, n) => (err !== null ? reject(err) : resolve(buf.subarray(0, n))), aheadEnd);
  });
}

/** Reads a whole file sequentially in 128 KiB requests, as the kernel does. */
async function readAll (store: TempFileStore): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let pos = 0; pos < store.size; pos += 128 * KiB) parts.push(await readAt(store, pos, 128 * KiB, pos + 2 * MiB));
  return Buffer.concat(parts);
}

describe('TempFileStore and Downloader in-process, against the test origin', () => {
  let origin: TestOrigin;
  let dispatcher: Dispatcher;
  let dir: string;
  const hasher = new ContentHasher();
  const stores: TempFileStore[] = [];
  before(async () => {
    origin = await TestOrigin.start();
    dispatcher = createOriginDispatcher();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-store-'));
  });
  after(async () => {
    await Promise.allSettled(stores.map(s => s.close()));
    await dispatcher.close();
    await hasher.close();
    await origin.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  function options (over: Partial<StoreOptions> = {}): StoreOptions {
    return {
      dispatcher,
      readTimeoutMs: 5000,
      readMaxWaitMs: 30_000,
      downloadStallMs: 5000,
      slots: new DownloadSlots(8),
      maxDownloadsPerFile: 4,
      fillMaxBytes: 0,
      quota: new CacheQuota(1024 * MiB, () => Promise.resolve(0), pino({ level: 'silent' })),
      hasher,
      ...over,
    };
  }

  /**
   * Serves `name` with `size` bytes and opens a store for it; returns both the store and the
   * content. `onDisk` bytes of the content are in the temp file beforehand, as an earlier run
   * left them, and the database `claimed` these ranges.
   */
  async function open (
    name: string,
    size: number,
    faults: Faults = {},
    over: Partial<StoreOptions> = {},
    { onDisk = 0, claimed = [] }: { onDisk?: number; claimed?: Array<[number, number]> } = {}
  ) {
    const content = origin.add(name, size, faults);
    const url = origin.url(name);
    const file = path.join(dir, `${name}.part`);
    if (onDisk > 0) await fs.writeFile(file, content.subarray(0, onDisk));
    const info = await probeOrigin(dispatcher, url, {});
    const source = { id: name, name, endpoints: new UrlSource(url, {}), origin: info, verified: false };
    const store = await TempFileStore.create(source, file, options(over), claimed);
    stores.push(store);
    return { store, content };
  }

  it('reads byte-exact at random offsets while a throttled download runs', async () => {
    const { store, content } = await open('random', 4 * MiB, { throttle: 16 * MiB });
    for (let i = 0; i < 20; i++) {
      const pos = Math.floor(Math.random() * (content.length - 4096));
      assert.ok((await readAt(store, pos, 4096)).equals(content.subarray(pos, pos + 4096)), `bytes at ${pos}`);
    }
  });

  it('resumes a dropped connection with Range and If-Range, fetching each byte once', async () => {
    const { store, content } = await open('dropped', 3 * MiB, { dropAt: MiB });
    assert.ok((await readAll(store)).equals(content));
    const gets = origin.requests.filter(r => r.file === 'dropped' && r.method === 'GET');
    assert.ok(gets.length >= 2, 'a second request after the drop');
    const resumed = gets[gets.length - 1];
    assert.match(resumed.range ?? '', /^bytes=\d+-/);
    assert.ok(Number(/^bytes=(\d+)-/.exec(resumed.range!)![1]) > 0, 'resumed past the start');
    assert.ok(resumed.ifRange !== null, 'with If-Range');
    assert.ok(origin.bytesSent('dropped') <= content.length * 1.01, `origin sent ${origin.bytesSent('dropped')}`);
  });

  it('starts from the bytes already on disk and asks only for the rest', async () => {
    const { store, content } = await open('resumed', 2 * MiB, {}, {}, { onDisk: MiB, claimed: [[0, MiB]] });
    assert.equal(store.presentBytes, MiB);
    assert.ok((await readAll(store)).equals(content));
    const first = origin.requests.find(r => r.file === 'resumed' && r.method === 'GET')!;
    assert.equal(first.range, `bytes=${MiB}-${2 * MiB - 1}`);
    assert.equal(origin.bytesSent('resumed'), MiB);
  });

  it('drops claimed ranges the temp file is too short to hold', async () => {
    const { store, content } = await open('short', MiB, {}, {}, { onDisk: 100 * KiB, claimed: [[0, MiB]] });
    assert.equal(store.trimmedAtCreate, true);
    assert.equal(store.presentBytes, 100 * KiB);
    assert.ok((await readAll(store)).equals(content));
  });

  it('never mixes versions: a file changed at the origin (same size, new ETag) fails the read and the file', async () => {
    const { store, content } = await open('changing', 2 * MiB, { throttle: 4 * MiB, dropAt: 512 * KiB });
    assert.ok((await readAt(store, 0, 4096)).equals(content.subarray(0, 4096)));
    // A new version of the same size, so only the ETag tells them apart, while the first
    // connection runs on to its drop: the resumed request's If-Range then gets the whole new
    // file (200), which must not be mixed in.
    origin.add('changing', generateContent('changing, version 2', 2 * MiB), { throttle: 4 * MiB });
    await assert.rejects(readAt(store, 2 * MiB - 4096, 4096), (err: FsError) => /new ETag/.test(err.message));
    assert.equal(store.state, 'error');
    // What it holds is the first version's, byte for byte.
    for (const [s, e] of store.ranges()) {
      assert.ok((await readAt(store, s, e - s)).equals(content.subarray(s, e)), `bytes ${s}-${e} are version 1's`);
    }
  });

  it('fails waiting reads at once when the origin says the file is gone', async () => {
    const { store } = await open('gone', 2 * MiB, { dropAt: 512 * KiB, statusAfterFirstGet: 404 });
    const began = performance.now();
    await assert.rejects(readAt(store, MiB, 4096), (err: FsError) => err.errno === 'EIO' && /404/.test(err.message));
    assert.ok(performance.now() - began < 2000);
    await assert.rejects(readAt(store, MiB, 4096), 'a later read of missing bytes fails at once');
  });

  it('fails a read with ETIMEDOUT once its download brought nothing for read-timeout', async () => {
    const { store } = await open('stalled', 2 * MiB, { stallAt: 256 * KiB }, { readTimeoutMs: 300, downloadStallMs: 60_000 });
    const began = performance.now();
    await assert.rejects(readAt(store, MiB, 4096), (err: FsError) => err.errno === 'ETIMEDOUT');
    const ms = performance.now() - began;
    assert.ok(ms >= 250 && ms < 2000, `failed after ${Math.round(ms)} ms`);
    assert.equal(store.state, 'stalled');
  });

  it('a download that waited at its read-ahead bound longer than read-timeout serves the next read, which does not time out', async () => {
    const { store, content } = await open('paused', 8 * MiB, {}, { readTimeoutMs: 300 });
    assert.ok((await readAt(store, 0, 4096, MiB)).equals(content.subarray(0, 4096)));
    // Time itself is the condition: the reader pauses for longer than read-timeout.
    await new Promise(resolve => setTimeout(resolve, 700));
    assert.ok(store.presentBytes < 4 * MiB, 'the download stopped at its bound');
    const pos = 3 * MiB;
    assert.ok((await readAt(store, pos, 4096, pos + MiB)).equals(content.subarray(pos, pos + 4096)));
  });

  it('pauses its download while the quota is full; readers time out, and it resumes when space frees', async () => {
    const quota = new CacheQuota(8 * MiB, () => Promise.resolve(0), pino({ level: 'silent' }));
    quota.setAllocated('someone-else', 8 * MiB);
    let wrote!: () => void;
    const firstWrite = new Promise<void>(resolve => { wrote = resolve; });
    const { store, content } = await open('quota', MiB, {}, { quota, readTimeoutMs: 300, observer: { onWrite: () => wrote() } });
    await assert.rejects(readAt(store, 0, 4096), (err: FsError) => err.errno === 'ETIMEDOUT');
    assert.equal(store.presentBytes, 0, 'nothing written over the quota');
    quota.setAllocated('someone-else', 0);
    await firstWrite; // the paused download goes on by itself
    assert.ok((await readAll(store)).equals(content));
  });

  it('cancel fails waiting reads at once and later reads of missing bytes; resume completes the file', async () => {
    const { store, content } = await open('cancelled', 2 * MiB, { throttle: 2 * MiB });
    const waiting = readAt(store, 2 * MiB - 4096, 4096);
    store.cancel('cancelled by the test');
    await assert.rejects(waiting, (err: FsError) => err.errno === 'ECANCELED');
    await assert.rejects(readAt(store, 2 * MiB - 4096, 4096), (err: FsError) => err.errno === 'EIO');
    origin.setFaults('cancelled', {});
    store.resume();
    assert.ok((await readAll(store)).equals(content));
  });

  /** The store's verdicts, as its observer hears them. */
  function verdicts (): { observer: StoreObserver; next: () => Promise<{ ok: boolean; actual: string }>; failed: Promise<void> } {
    const seen: Array<{ ok: boolean; actual: string }> = [];
    let wake: (() => void) | null = null;
    let markFailed = (): void => {};
    const failed = new Promise<void>(resolve => { markFailed = resolve; });
    const observer: StoreObserver = {
      onVerified: (_s, ok, actual) => { seen.push({ ok, actual }); wake?.(); },
      onStateChange: (_s, state) => { if (state === 'error') markFailed(); },
    };
    let taken = 0;
    const next = async (): Promise<{ ok: boolean; actual: string }> => {
      while (seen.length <= taken) await new Promise<void>(resolve => { wake = resolve; });
      return seen[taken++];
    };
    return { observer, next, failed };
  }

  it('a file whose origin states its digest is verified as it completes; a complete file\'s reads wait for the verdict', async () => {
    for (const kind of ['repr-digest', 'digest', 'content-md5', 'x-amz-checksum-sha256', 'x-goog-hash'] as const) {
      const v = verdicts();
      const over = { observer: v.observer, fillMaxBytes: 1024 * MiB };
      const { store, content } = await open(`digest-${kind}`, 3 * MiB + 5, { statesDigest: kind }, over);
      const algorithms = {
        'repr-digest': 'sha-256', digest: 'sha-512', 'content-md5': 'md5', 'x-amz-checksum-sha256': 'sha-256', 'x-goog-hash': 'md5',
      };
      const algorithm = algorithms[kind];
      assert.equal(store.source.origin.digest?.algorithm, algorithm, kind);
      store.startDownload();
      assert.deepEqual(await v.next(), { ok: true, actual: store.source.origin.digest?.hex }, kind);
      assert.equal(store.state, 'complete');
      assert.ok((await readAll(store)).equals(content));
    }
  });

  it('a corrupt download is dropped and fetched again; a second bad copy fails the file, and no read gets its bytes', async () => {
    const v = verdicts();
    const faults = { statesDigest: 'repr-digest', corruptAt: MiB + 3 } as const;
    const { store, content } = await open('corrupt-once', 2 * MiB, faults, { observer: v.observer });
    const reading = readAll(store); // streams while it downloads: gets the first copy's bytes, then fails or not
    const first = await v.next();
    assert.equal(first.ok, false);
    assert.notEqual(first.actual, store.source.origin.digest?.hex);
    await reading.catch(() => {});
    assert.deepEqual(await v.next(), { ok: true, actual: store.source.origin.digest?.hex });
    assert.ok((await readAll(store)).equals(content), 'after the second download, the right bytes');

    const w = verdicts();
    const twice = { statesDigest: 'repr-digest', corruptAt: 5, corruptTimes: 2 } as const;
    const bad = await open('corrupt-twice', 2 * MiB, twice, { observer: w.observer });
    bad.store.startDownload(true);
    assert.equal((await w.next()).ok, false);
    assert.equal((await w.next()).ok, false);
    await w.failed;
    assert.match(bad.store.lastError?.message ?? '', /two downloads did not match the origin's sha-256 [0-9a-f]{64} \(Repr-Digest\)/);
    await assert.rejects(readAt(bad.store, 0, 4096), (err: FsError) => err.errno === 'EIO');
    assert.equal(bad.store.presentBytes, 0, 'no byte of a bad copy stays');
  });

  it('recheck: a complete file damaged on disk is found, dropped and fetched again', async () => {
    const v = verdicts();
    const over = { observer: v.observer, fillMaxBytes: 1024 * MiB };
    const { store, content } = await open('damaged', MiB, { statesDigest: 'repr-digest' }, over);
    store.startDownload();
    assert.equal((await v.next()).ok, true);
    assert.deepEqual(await store.recheck(), { ok: true, actual: store.source.origin.digest?.hex });
    assert.equal((await v.next()).ok, true);
    const fh = await fs.open(path.join(dir, 'damaged.part'), 'r+');
    await fh.write(Buffer.from([content[1000] ^ 1]), 0, 1, 1000);
    await fh.close();
    const again = await store.recheck();
    assert.equal(again.ok, false);
    assert.equal((await v.next()).ok, false);
    assert.equal((await v.next()).ok, true, 'fetched again, and verified');
    assert.ok((await readAll(store)).equals(content));
  });
});
