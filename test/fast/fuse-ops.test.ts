import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Catalogue, type FileEntry } from '../../agent/catalogue/catalogue';
import { ETIMEDOUT } from '../../agent/fs/errno';
import { createFuseOps, type FsBackend } from '../../agent/fs/fuse-ops';
import { ServedCounter } from '../../agent/fs/served-counter';
import { UrlSource } from '../../agent/origin/file-source';
import { FastReadGate } from '../../agent/store/fast-read-gate';
import type { ReadCallback } from '../../agent/store/store-contract';
import type { TempFileStore } from '../../agent/store/temp-file-store';

// The FUSE operations against a fake backend: what they answer fuse-native when fuse-native's
// own timeouts are near, which a real mount cannot show on demand.

const SIZE = 1024 * 1024;

function entry (): FileEntry {
  return {
    id: '0123456789abcdef01234567',
    name: 'a.bin',
    url: 'http://127.0.0.1:1/a.bin',
    headers: {},
    urlCommand: null,
    endpoints: new UrlSource('http://127.0.0.1:1/a.bin', {}),
    folder: null,
    origin: { size: SIZE, etag: '"e"', lastModified: null, acceptRanges: true, digest: null },
    addedAt: 0,
    mtimeMs: 0,
  };
}

/** A store whose reads are answered when the test says. */
function fakeStore (): { store: TempFileStore; pending: Array<{ buf: Buffer; len: number; cb: ReadCallback }> } {
  const pending: Array<{ buf: Buffer; len: number; cb: ReadCallback }> = [];
  const store = {
    fastReads: new FastReadGate(),
    fastReadHandle: () => null,
    read: (buf: Buffer, len: number, _pos: number, cb: ReadCallback) => { pending.push({ buf, len, cb }); },
  } as unknown as TempFileStore;
  return { store, pending };
}

function backend (openStore: () => Promise<TempFileStore>, released: TempFileStore[]): FsBackend {
  const catalogue = new Catalogue();
  catalogue.add(entry());
  return {
    catalogue,
    openStore,
    releaseStore: store => { released.push(store); },
    contentEpoch: () => 0,
    served: new ServedCounter(),
    startedAtMs: 0,
  };
}

const open = (ops: ReturnType<typeof createFuseOps>): Promise<[number, number]> =>
  new Promise(resolve => ops.open!('/a.bin', 0, (err, fd) => resolve([err, fd ?? 0])));

describe('the FUSE operations near fuse-native\'s own timeouts', () => {
  it('an open whose store comes after the open deadline fails with ETIMEDOUT, and the store it got is given back', async () => {
    const { store } = fakeStore();
    let arrive!: (s: TempFileStore) => void;
    const released: TempFileStore[] = [];
    const ops = createFuseOps(backend(() => new Promise(resolve => { arrive = resolve; }), released), { openDeadlineMs: 20 });
    const [code] = await open(ops);
    assert.equal(code, ETIMEDOUT);
    arrive(store);
    await new Promise(resolve => setImmediate(resolve));
    assert.deepEqual(released, [store], 'no handle is left that no release will ever close');
  });

  it('a read answered after fuse-native answered it itself never writes into FUSE\'s (freed) buffer', async () => {
    const { store, pending } = fakeStore();
    const ops = createFuseOps(backend(() => Promise.resolve(store), []), { openDeadlineMs: 1000 });
    const [code, fh] = await open(ops);
    assert.equal(code, 0);

    // Answered in time: the bytes reach FUSE's buffer.
    const fuseBuf = Buffer.alloc(128 * 1024);
    const answered = new Promise<number>(resolve => ops.read!('/a.bin', fh, fuseBuf, 4096, 0, resolve));
    pending[0].buf.fill(7, 0, 4096);
    pending[0].cb(null, 4096);
    assert.equal(await answered, 4096);
    assert.ok(fuseBuf.subarray(0, 4096).every(b => b === 7));

    // fuse-native's timeout answered first and detached the buffer over libfuse's memory.
    const late = Buffer.alloc(128 * 1024);
    ops.read!('/a.bin', fh, late, 4096, 0, () => {});
    const read = pending[1];
    assert.notEqual(read.buf.buffer, late.buffer, 'the store reads into a buffer of the agent\'s own');
    structuredClone(late.buffer, { transfer: [late.buffer] }); // what napi_detach_arraybuffer does
    read.buf.fill(9, 0, 4096);
    assert.doesNotThrow(() => read.cb(null, 4096));
  });
});
