import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { StorePool } from '../../agent/cache/store-pool';
import { Catalogue } from '../../agent/catalogue/catalogue';
import { EventHub } from '../../agent/control/event-hub';
import { RemoteFiles } from '../../agent/files/remote-files';
import { createOriginDispatcher } from '../../agent/origin/http-client';
import { probeOrigin } from '../../agent/origin/probe';
import { sameVersion } from '../../agent/origin/origin-info';
import { RangeCommitter } from '../../agent/state/range-committer';
import { StateDb } from '../../agent/state/state-db';
import { DownloadSlots } from '../../agent/store/download-slots';
import { ContentHasher } from '../../agent/verify/content-hasher';
import { generateContent, TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;

/** The agent's per-file parts, real (origin on 127.0.0.1, SQLite, temp files), without a mount. */
interface Stack {
  origin: TestOrigin;
  files: RemoteFiles;
  pool: StorePool;
  db: StateDb;
  catalogue: Catalogue;
  /** Resolves once `until` holds after a write the store made (checked at each write, woken by it). */
  afterWrites: (until: () => boolean) => Promise<void>;
}

async function stack (): Promise<Stack> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-remote-file-'));
  const origin = await TestOrigin.start();
  const dispatcher = createOriginDispatcher();
  const hasher = new ContentHasher();
  const log = pino({ level: 'silent' });
  const { db } = StateDb.open(path.join(dir, 'state.db'));
  const committer = new RangeCommitter(db, log, 'boot');
  const catalogue = new Catalogue();
  let pool: StorePool | null = null;
  const events = new EventHub(() => []);
  const watchers = new Set<{ until: () => boolean; resolve: () => void }>();
  const afterWrites = (until: () => boolean): Promise<void> => until()
    ? Promise.resolve()
    : new Promise(resolve => { watchers.add({ until, resolve }); });
  pool = new StorePool({
    cacheDir: path.join(dir, 'cache'),
    maxBytes: 1024 * MiB,
    evictOnClose: false,
    store: {
      dispatcher,
      readTimeoutMs: 5000,
      readMaxWaitMs: 30_000,
      downloadStallMs: 2000,
      slots: new DownloadSlots(8),
      maxDownloadsPerFile: 2,
      fillMaxBytes: 1024 * MiB,
      hasher,
    },
    db,
    committer,
    log,
    observer: {
      onWrite: () => {
        for (const w of watchers) if (w.until()) { watchers.delete(w); w.resolve(); }
      },
    },
    sparseFiles: true,
  });
  await fs.mkdir(path.join(dir, 'cache'), { recursive: true });
  const files = new RemoteFiles({ catalogue, pool, db, events, log, dispatcher, stopping: () => false, mount: path.join(dir, 'mnt') });
  after(async () => {
    for (const store of [...pool!.stores()]) await store.close();
    committer.stop();
    db.close();
    await hasher.close();
    await dispatcher.close();
    await origin.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { origin, files, pool, db, catalogue, afterWrites };
}

describe('one remote file\'s transitions (agent/files/remote-file)', () => {
  it('a new version adopted while an open arrives: the open gets the new version\'s store, never the old one\'s', async () => {
    const { origin, files, db } = await stack();
    origin.add('v.bin', 4 * MiB, { throttle: 8 * MiB });
    await files.add({ url: origin.url('v.bin') });
    const file = files.resolve('v.bin');
    const first = await file.open();
    files.byId(file.id)!.released(first);

    // The origin now serves another version; the re-check adopts it while opens arrive.
    origin.add('v.bin', generateContent('v.bin, version 2', 6 * MiB));
    const now = await probeOrigin(createOriginDispatcher(), origin.url('v.bin'), {});
    const opens = [file.open(), file.open()];
    const adopted = file.adoptNewVersion(now);
    opens.push(file.open());
    const stores = await Promise.all(opens);
    await adopted;
    for (const store of stores) {
      assert.ok(sameVersion(store.source.origin, now), 'every open holds the version the mount shows');
      assert.equal(store.size, 6 * MiB);
    }
    assert.equal(file.entry!.origin.size, 6 * MiB);
    const row = db.loadFiles('boot').find(r => r.id === file.id)!;
    assert.equal(row.origin.size, 6 * MiB, 'the database records the new version');
    for (const store of stores) file.released(store);
  });

  it('a removal while a download writes: the file, its bytes and its row are gone, and nothing is claimed after', async () => {
    const { origin, files, pool, db, catalogue, afterWrites } = await stack();
    origin.add('gone.bin', 16 * MiB, { throttle: 4 * MiB });
    await files.add({ url: origin.url('gone.bin') });
    const file = files.resolve('gone.bin');
    await files.prefetch('gone.bin');
    // Mid-download: writes are landing.
    await afterWrites(() => pool.presentBytes(file.id) >= MiB);
    await files.remove('gone.bin');
    assert.equal(catalogue.get('gone.bin'), undefined);
    assert.equal(pool.get(file.id), undefined);
    assert.equal(db.loadFiles('boot').some(r => r.id === file.id), false);
    await assert.rejects(file.open(), { errno: 'ENOENT' });
    assert.throws(() => files.resolve('gone.bin'), { errno: 'ENOENT' });
  });

  it('a new source and a removal asked at once run one after the other, never interleaved', async () => {
    const { origin, files, catalogue, db } = await stack();
    origin.add('s.bin', MiB);
    origin.add('mirror/s.bin', origin.add('s.bin', MiB));
    await files.add({ url: origin.url('s.bin') });
    const setUrl = files.setUrl({ file: 's.bin', url: origin.url('mirror/s.bin') });
    const removed = files.remove('s.bin');
    const [set, gone] = await Promise.allSettled([setUrl, removed]);
    assert.equal(gone.status, 'fulfilled');
    // The new source landed whole before the removal, or found the file gone: never a row or entry left behind.
    if (set.status === 'fulfilled') assert.equal(set.value.keptBytes, true);
    assert.equal(catalogue.get('s.bin'), undefined);
    assert.equal(db.loadFiles('boot').length, 0);
  });
});
