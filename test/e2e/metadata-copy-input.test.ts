import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type Fuse from 'fuse-native';
import { run } from '../helpers/agent';

const execFileAsync = promisify(execFile);

/** One node of the copy, as agent/fs/metadata-snapshot.ts encodes it. */
function node (p: string, dir: boolean, size: number, mtimeMs: number): Buffer {
  const pathBytes = Buffer.from(p);
  const head = Buffer.alloc(24);
  head[0] = dir ? 1 : 0;
  head.writeUInt32LE(pathBytes.length, 4);
  head.writeDoubleLE(size, 8);
  head.writeDoubleLE(mtimeMs, 16);
  return Buffer.concat([head, pathBytes]);
}

function copy (count: number, ...nodes: Buffer[]): Buffer {
  const c = Buffer.alloc(4);
  c.writeUInt32LE(count, 0);
  return Buffer.concat([c, ...nodes]);
}

// The binding's copy of the file tree (native/metadata.c) takes what JavaScript hands it; a
// copy that is not well formed is refused (false), never a hang, a crash or a wrong answer.
// This process mounts a bare fuse-native instance and only hands over copies; the mount is
// read by child processes.
describe('the FUSE threads\' copy of the file tree, given odd input', () => {
  let dir: string;
  let mnt: string;
  let fuse: Fuse;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-meta-'));
    mnt = path.join(dir, 'mnt');
    await fs.mkdir(mnt);
    const FuseNative = require('fuse-native') as typeof Fuse;
    const root = { mode: 0o40555, uid: 0, gid: 0, size: 4096, nlink: 2, mtime: new Date(0), atime: new Date(0), ctime: new Date(0) };
    fuse = new FuseNative(mnt, {
      getattr: (p, cb) => (p === '/' ? cb(0, root) : cb(-2)),
      readdir: (p, cb) => (p === '/' ? cb(0, ['.', '..']) : cb(-2)),
    }, { force: true, options: ['ro'] });
    await new Promise<void>((resolve, reject) => fuse.mount(err => (err ? reject(err) : resolve())));
  });
  after(async () => {
    await new Promise<void>(resolve => fuse.unmount(() => resolve()));
    await execFileAsync('fusermount', ['-uz', mnt]).catch(() => {});
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses a count larger than the buffer can hold, at once (it used to loop forever)', { timeout: 10_000 }, () => {
    const began = performance.now();
    assert.equal(fuse.setMetadata(copy(0xffffffff, node('/', true, 4096, 0))), false);
    assert.equal(fuse.setMetadata(copy(3, node('/', true, 4096, 0))), false);
    assert.ok(performance.now() - began < 100, 'refused without looping over the count');
  });

  it('refuses a path with a NUL byte or a duplicate path', () => {
    assert.equal(fuse.setMetadata(copy(2, node('/', true, 4096, 0), node('/a\0b', false, 1, 0))), false);
    assert.equal(fuse.setMetadata(copy(3, node('/', true, 4096, 0), node('/a', false, 1, 0), node('/a', false, 2, 0))), false);
  });

  it('shows a Last-Modified before 1970, a negative or NaN size as 0', async () => {
    const ok = fuse.setMetadata(copy(4,
      node('/', true, 4096, 0),
      node('/old.bin', false, 5, -86_400_000),
      node('/neg.bin', false, -1, 1_000),
      node('/nan.bin', false, Number.NaN, Number.NaN)));
    assert.equal(ok, true);
    const r = await run('stat', ['-c', '%n %s %Y', path.join(mnt, 'old.bin'), path.join(mnt, 'neg.bin'), path.join(mnt, 'nan.bin')]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().trim().split('\n').map(l => l.replace(`${mnt}/`, ''));
    assert.deepEqual(lines, ['old.bin 5 0', 'neg.bin 0 1', 'nan.bin 0 0']);
    const ls = await run('ls', [mnt]);
    assert.deepEqual(ls.stdout.toString().trim().split('\n').sort(), ['nan.bin', 'neg.bin', 'old.bin']);
  });
});
