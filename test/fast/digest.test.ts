import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { digestFromHeaders, userSha256 } from '../../agent/verify/digest';

const content = Buffer.from('the whole file');
const b64 = (alg: string): string => createHash(alg).update(content).digest('base64');
const hex = (alg: string): string => createHash(alg).update(content).digest('hex');

describe('the digest an origin states', () => {
  it('reads RFC 9530 Repr-Digest, RFC 3230 Digest, S3 and GCS headers', () => {
    assert.deepEqual(digestFromHeaders({ 'repr-digest': `sha-256=:${b64('sha256')}:` }, false),
      { algorithm: 'sha-256', hex: hex('sha256'), source: 'Repr-Digest' });
    assert.deepEqual(digestFromHeaders({ digest: `SHA-512=${b64('sha512')}` }, false),
      { algorithm: 'sha-512', hex: hex('sha512'), source: 'Digest' });
    assert.deepEqual(digestFromHeaders({ 'x-amz-checksum-sha256': b64('sha256') }, false),
      { algorithm: 'sha-256', hex: hex('sha256'), source: 'x-amz-checksum-sha256' });
    assert.deepEqual(digestFromHeaders({ 'x-amz-checksum-crc32c': 'yZRlqg==' }, false),
      { algorithm: 'crc32c', hex: 'c99465aa', source: 'x-amz-checksum-crc32c' });
    assert.deepEqual(digestFromHeaders({ 'x-goog-hash': ['crc32c=yZRlqg==', `md5=${b64('md5')}`] }, false),
      { algorithm: 'md5', hex: hex('md5'), source: 'x-goog-hash' }, 'the stronger of the two');
  });

  it('takes the strongest stated, and ignores what it cannot trust', () => {
    const both = { 'repr-digest': `sha-256=:${b64('sha256')}:, sha-512=:${b64('sha512')}:`, 'content-md5': b64('md5') };
    assert.equal(digestFromHeaders(both, true)?.algorithm, 'sha-512');
    assert.equal(digestFromHeaders({ 'content-md5': b64('md5') }, false), null, 'Content-MD5 of a partial answer is the part\'s');
    assert.equal(digestFromHeaders({ 'content-digest': `sha-256=:${b64('sha256')}:` }, false), null);
    assert.equal(digestFromHeaders({ 'content-digest': `sha-256=:${b64('sha256')}:` }, true)?.source, 'Content-Digest');
    assert.equal(digestFromHeaders({ 'x-amz-checksum-crc32c': 'yZRlqg==-3' }, false), null, 'a multipart object\'s checksum of checksums');
    assert.equal(digestFromHeaders({ 'x-amz-checksum-sha256': b64('sha256'), 'x-amz-checksum-type': 'COMPOSITE' }, false), null);
    assert.equal(digestFromHeaders({ 'repr-digest': 'sha-256=:c2hvcnQ=:' }, false), null, 'the wrong length');
    assert.equal(digestFromHeaders({ 'repr-digest': 'unixsum=:AAAA:' }, false), null, 'an algorithm we do not know');
    assert.equal(digestFromHeaders({}, true), null);
  });

  it('fsctl add --sha256: 64 hex digits', () => {
    assert.deepEqual(userSha256(hex('sha256').toUpperCase()), { algorithm: 'sha-256', hex: hex('sha256'), source: 'user' });
    assert.throws(() => userSha256('abc'), /64 hexadecimal digits/);
  });
});
