import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FsError } from '../../agent/errors';
import { ContentHasher } from '../../agent/verify/content-hasher';
import { FileVerifier, type VerifiedFile } from '../../agent/verify/file-verifier';

const hasher = new ContentHasher();
after(() => hasher.close());

/** A file on disk and what the verifier told it, with the store's side played by the test. */
async function fileOf (content: Buffer, expectedHex: string): Promise<{ file: VerifiedFile & { generation: number }; said: string[] }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-verify-'));
  after(() => fs.rm(dir, { recursive: true, force: true }));
  const filePath = path.join(dir, 'f');
  await fs.writeFile(filePath, content);
  const said: string[] = [];
  const file = {
    name: 'f.bin',
    size: content.length,
    path: filePath,
    digest: { algorithm: 'sha-256' as const, hex: expectedHex, source: 'Repr-Digest' },
    generation: 0,
    closing: false,
    prefixEnd: () => content.length,
    read: (buf: Buffer, pos: number, length: number, cb: (err: FsError | null, n: number) => void) => {
      content.copy(buf, 0, pos, pos + length);
      cb(null, length);
    },
    matched: (actual: string) => { said.push(`matched ${actual.slice(0, 8)}`); },
    mismatched: async (actual: string, reason: string, final: FsError | null) => {
      said.push(`mismatched ${final === null ? 'once' : 'for good'}: ${reason.slice(0, 40)}`);
    },
    failed: (err: FsError) => { said.push(`failed: ${err.message}`); },
  };
  return { file, said };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const readOf = (v: FileVerifier, length: number): Promise<{ err: FsError | null; data: Buffer }> => new Promise(resolve => {
  const buf = Buffer.alloc(length);
  v.hold(buf, 0, length, (err, n) => resolve({ err, data: buf.subarray(0, n) }));
});

describe('the check of a file against its digest (agent/verify/file-verifier)', () => {
  it('a matching copy: held reads get the bytes, the file is checked', async () => {
    const content = Buffer.from('the origin\'s bytes');
    const { file, said } = await fileOf(content, sha(content));
    const v = new FileVerifier(file, hasher, false, 10_000);
    assert.equal(v.checked, false);
    const held = readOf(v, content.length);
    await v.verify();
    assert.equal(v.checked, true);
    assert.deepEqual(said, [`matched ${sha(content).slice(0, 8)}`]);
    const r = await held;
    assert.equal(r.err, null);
    assert.ok(r.data.equals(content));
  });

  it('a bad copy: held reads fail with EIO, a second bad copy is final until the count is forgotten', async () => {
    const content = Buffer.from('not what the origin stated');
    const { file, said } = await fileOf(content, sha(Buffer.from('something else')));
    const v = new FileVerifier(file, hasher, false, 10_000);
    const held = readOf(v, 4);
    await v.verify();
    assert.equal((await held).err?.errno, 'EIO');
    assert.equal(v.gaveUp, false);
    v.dropped();
    v.refilling();
    await v.verify();
    assert.equal(v.gaveUp, true);
    assert.deepEqual(said.map(s => s.split(':')[0]), ['mismatched once', 'mismatched for good']);
    v.forgetBadCopies();
    assert.equal(v.gaveUp, false);
  });

  it('judges nothing when the bytes were dropped while they were hashed', async () => {
    const content = Buffer.alloc(4 * 1024 * 1024, 7);
    const { file, said } = await fileOf(content, sha(content));
    const v = new FileVerifier(file, hasher, false, 10_000);
    const verdict = v.verify();
    file.generation++; // a drop began in this turn, as the store's discard does
    v.dropped();
    await verdict;
    assert.deepEqual(said, []);
    assert.equal(v.checked, false);
  });

  it('a held read that waits longer than read-timeout fails with ETIMEDOUT', async () => {
    const content = Buffer.from('x');
    const { file } = await fileOf(content, sha(content));
    const v = new FileVerifier(file, hasher, false, 50);
    assert.equal((await readOf(v, 1)).err?.errno, 'ETIMEDOUT');
    v.close();
  });
});
