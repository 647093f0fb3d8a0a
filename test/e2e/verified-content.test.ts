import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fsctl, hashFile, run } from '../helpers/agent';
import { useOriginAndAgent } from '../helpers/fixtures';
import { claimedRanges, tempFile } from '../helpers/state';
import { waitForEvent, waitForFile } from '../helpers/wait';
import { sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('verified content: each file checked against the digest its origin states', () => {
  const fx = useOriginAndAgent();
  /** The file's bytes on disk matched its digest; woken by its events, checked once subscribed. */
  const verified = (file: string): Promise<unknown> => waitForFile(fx.agent, file, f => f.verification?.state === 'verified', 60_000);

  it('a file whose origin states its sha-256 is verified once complete, and says so', async () => {
    // Slow enough (6 s) that the event subscription is in place long before the verdict.
    const content = fx.origin.add('good.bin', 24 * MiB, { statesDigest: 'repr-digest', throttle: MiB });
    await fx.agent.add(fx.origin.url('good.bin'));
    const event = waitForEvent(fx.agent, e => e.type === 'verified' && e.file === 'good.bin', 60_000);
    assert.equal(await hashFile(fx.agent.path('good.bin'), { timeoutMs: 60_000 }), sha256(content));
    const seen = await event;
    assert.ok(seen.type === 'verified' && seen.ok && seen.algorithm === 'sha-256' && seen.actual === sha256(content));
    const info = (await fsctl(fx.agent, ['info', 'good.bin'])).text;
    assert.match(info, new RegExp(`^content\\s+verified \\(sha-256 ${sha256(content)}, from Repr-Digest\\)$`, 'm'));
    assert.match((await fsctl(fx.agent, ['ls'])).text, /good\.bin .*complete, verified \(sha-256\)/);
    const check = await fsctl(fx.agent, ['verify', 'good.bin']);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.text, `good.bin: verified (sha-256 ${sha256(content)})\n`);
  });

  it('a flipped byte under the right digest: dropped and fetched again; a reader after completion gets only the right bytes', async () => {
    const size = 8 * MiB;
    const content = fx.origin.add('flipped.bin', size, { statesDigest: 'repr-digest', corruptAt: 5 * MiB + 17 });
    await fx.agent.add(fx.origin.url('flipped.bin'));
    // This reader streams the first copy as it arrives: it may get its wrong byte, which is why the file is checked.
    await run('cat', [fx.agent.path('flipped.bin')], { timeoutMs: 60_000 });
    await verified('flipped.bin');
    // A new open reads the second copy, not pages the kernel kept of the first.
    assert.equal(await hashFile(fx.agent.path('flipped.bin'), { timeoutMs: 60_000 }), sha256(content));
    assert.ok(fx.origin.bytesSent('flipped.bin') >= 2 * size, 'fetched twice');
  });

  it('two bad copies: the file fails with both digests shown, and every read fails with EIO', async () => {
    const faults = { statesDigest: 'x-amz-checksum-sha256', corruptAt: 3, corruptTimes: 1000 } as const;
    const content = fx.origin.add('rotten.bin', 4 * MiB, faults);
    await fx.agent.add(fx.origin.url('rotten.bin'));
    const reader = await run('cat', [fx.agent.path('rotten.bin')], { timeoutMs: 60_000 });
    const failed = await waitForFile(fx.agent, 'rotten.bin', f => f.state === 'error', 60_000);
    assert.match(failed.lastError ?? '', /two downloads did not match the origin's sha-256 [0-9a-f]{64} \(x-amz-checksum-sha256\); the last hashed/);
    assert.equal(failed.presentBytes, 0);
    const info = (await fsctl(fx.agent, ['info', 'rotten.bin'])).text;
    const twice = `^content\\s+did not match twice \\(sha-256 ${sha256(content)}, from x-amz-checksum-sha256; ` +
      'the last copy hashed to [0-9a-f]{64}\\)';
    assert.match(info, new RegExp(twice, 'm'));
    assert.match((await fsctl(fx.agent, ['ls'])).text, /rotten\.bin .*error, did not match its sha-256/);
    // The first reader may have got bytes as they came; every read from now on fails, cached pages or not.
    void reader;
    for (let i = 0; i < 2; i++) {
      const again = await run('cat', [fx.agent.path('rotten.bin')], { timeoutMs: 20_000 });
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /Input\/output error/);
      assert.equal(again.stdout.length, 0, 'not one byte of a bad copy');
    }
    const verify = await fsctl(fx.agent, ['verify', 'rotten.bin']);
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, /rotten\.bin failed \(two downloads did not match .*\): there is no whole copy to check; fsctl resume tries again/);
  });

  it('fsctl verify finds a byte flipped in a complete temp file, drops the bytes and fetches them again', async () => {
    const content = fx.origin.add('aged.bin', 2 * MiB, { statesDigest: 'digest' });
    await fx.agent.add(fx.origin.url('aged.bin'));
    assert.equal(await hashFile(fx.agent.path('aged.bin')), sha256(content));
    await verified('aged.bin');
    const { id } = claimedRanges(fx.agent.dirs, 'aged.bin');
    const fh = await fs.open(tempFile(fx.agent.dirs, id), 'r+');
    await fh.write(Buffer.from([content[12345] ^ 0x40]), 0, 1, 12345);
    await fh.close();

    const check = await fsctl(fx.agent, ['verify', 'aged.bin']);
    assert.equal(check.code, 1);
    const flipped = Buffer.from(content);
    flipped[12345] ^= 0x40;
    const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
    assert.equal(check.text, `aged.bin: does not match its sha-512 (expected ${sha512(content)}, got ${sha512(flipped)}); ` +
      'its bytes were dropped and are fetched again\n');
    await verified('aged.bin'); // no longer verified once its bytes were dropped; verified again after the refetch
    assert.equal(await hashFile(fx.agent.path('aged.bin')), sha256(content));
    assert.equal((await fsctl(fx.agent, ['verify', 'aged.bin'])).code, 0);
  });

  it('--sha256 at add time: the user\'s digest is the one checked; a file without one says how to get one', async () => {
    const content = fx.origin.add('mine.bin', MiB);
    const wrong = fx.origin.add('wrong.bin', MiB);
    assert.equal((await fsctl(fx.agent, ['add', fx.origin.url('mine.bin'), '--sha256', sha256(content)])).code, 0);
    assert.equal((await fsctl(fx.agent, ['add', fx.origin.url('wrong.bin'), '--sha256', sha256(content)])).code, 0);
    assert.equal(await hashFile(fx.agent.path('mine.bin')), sha256(content));
    await verified('mine.bin');
    assert.match((await fsctl(fx.agent, ['info', 'mine.bin'])).text, /^content\s+verified \(sha-256 [0-9a-f]{64}, from --sha256\)$/m);
    await run('cat', [fx.agent.path('wrong.bin')], { timeoutMs: 30_000 });
    await waitForFile(fx.agent, 'wrong.bin', f => f.state === 'error', 60_000);
    void wrong;

    fx.origin.add('plain.bin', 1000);
    await fx.agent.add(fx.origin.url('plain.bin'));
    assert.match((await fsctl(fx.agent, ['info', 'plain.bin'])).text, /^content\s+- \(no digest: the origin states none; fsctl add --sha256 gives one\)$/m);
    const none = await fsctl(fx.agent, ['verify', 'plain.bin']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no digest is known for plain\.bin/);
    const bad = await fsctl(fx.agent, ['add', fx.origin.url('plain.bin'), '--name', 'x.bin', '--sha256', 'abc']);
    assert.equal(bad.code, 2, 'a usage error, found before the agent is asked');
    assert.match(bad.stderr, /--sha256 takes the 64 hex digits of a sha-256 digest/);
    const params = { url: fx.origin.url('plain.bin'), name: 'x.bin', sha256: 'abc' };
    const direct = await fx.agent.rpc('files.add', params).catch((e: Error) => e);
    assert.match(String(direct), /64 hexadecimal digits/, 'the agent checks it too');
  });
});
