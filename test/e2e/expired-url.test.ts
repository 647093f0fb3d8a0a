import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FileSummary } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, hashFile, run } from '../helpers/agent';
import { waitForFile } from '../helpers/wait';
import { generateContent, sha256 } from '../../tools/test-origin';

const MiB = 1024 * 1024;

describe('a file added by a temporary link', () => {
  const fx = useOriginAndAgent();

  it('says when its link expired, and goes on from the bytes it has once given a new one with fsctl set-url', async () => {
    const size = 24 * MiB;
    // 4 MB/s and a dropped connection at 8 MiB: the download needs a new connection after the link expired.
    const content = fx.origin.add('signed.bin', size, { throttle: 4_000_000, dropAt: 8 * MiB });
    await fx.agent.add(fx.origin.signedUrl('signed.bin', 200));
    const reader = hashFile(fx.agent.path('signed.bin'), { timeoutMs: 60_000 }).catch((err: Error) => err);

    const failed = await waitForFile(fx.agent, 'signed.bin', f => f.state === 'error');
    assert.match(failed.lastError ?? '', /^the URL expired at \d{4}-\d\d-\d\dT[\d:.]+Z; give a new one with fsctl set-url$/);
    assert.ok(failed.presentBytes > 0);
    const info = (await fsctl(fx.agent, ['info', 'signed.bin'])).text;
    assert.match(info, /url expires\s+\S+Z \(.* ago: give a new one with fsctl set-url\)/);
    const ls = (await fsctl(fx.agent, ['ls'])).text;
    assert.match(ls, /^signed\.bin: its URL expired [\d. a-z]+ ago; give a new one with fsctl set-url \(or a --url-command\)$/m);
    assert.ok(await reader instanceof Error, 'the reader waiting when it failed got an error (EIO), never a wrong hash');

    const sentBefore = fx.origin.bytesSent('signed.bin');
    const set = await fsctl(fx.agent, ['set-url', 'signed.bin', fx.origin.signedUrl('signed.bin', 600_000)]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.text, /^signed\.bin: new URL; the same version, so its [\d.]+ MiB on disk were kept$/m);
    assert.equal(await hashFile(fx.agent.path('signed.bin'), { timeoutMs: 60_000 }), sha256(content));
    const fetchedAgain = fx.origin.bytesSent('signed.bin') - sentBefore;
    const missing = size - failed.presentBytes;
    assert.ok(fetchedAgain <= missing * 1.01 + MiB, `after set-url the origin sent ${fetchedAgain} bytes; ${missing} were missing`);
  });

  it('drops the bytes when the new URL serves another version, and refuses a URL that does not answer, changing nothing', async () => {
    const v1 = fx.origin.add('moved.bin', 4 * MiB);
    await fx.agent.add(fx.origin.url('moved.bin'));
    assert.equal(await hashFile(fx.agent.path('moved.bin')), sha256(v1));

    const refused = await fsctl(fx.agent, ['set-url', 'moved.bin', fx.origin.url('nowhere.bin')]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /origin answered HTTP 404/);
    const still = (await fx.agent.rpc<FileSummary[]>('files.list')).find(f => f.name === 'moved.bin')!;
    assert.equal(still.url, fx.origin.url('moved.bin'));
    assert.equal(still.presentBytes, 4 * MiB);

    const v2 = fx.origin.add('elsewhere.bin', generateContent('moved.bin, version 2', 4 * MiB));
    const set = await fsctl(fx.agent, ['set-url', 'moved.bin', fx.origin.url('elsewhere.bin')]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.text, /serves another version, so the bytes on disk were dropped/);
    assert.equal(await hashFile(fx.agent.path('moved.bin')), sha256(v2));
  });

  it('keeps a cancelled file cancelled after set-url, whether the new URL serves the same version or another, until resume', async () => {
    const v1 = fx.origin.add('paused.bin', 8 * MiB, { throttle: 4 * MiB });
    await fx.agent.add(fx.origin.url('paused.bin'));
    assert.equal((await fsctl(fx.agent, ['prefetch', 'paused.bin'])).code, 0);
    await waitForFile(fx.agent, 'paused.bin', f => f.presentBytes > 0);
    assert.equal((await fsctl(fx.agent, ['cancel', 'paused.bin'])).code, 0);

    fx.origin.add('paused-mirror.bin', v1);
    const same = await fsctl(fx.agent, ['set-url', 'paused.bin', fx.origin.url('paused-mirror.bin')]);
    assert.match(same.text, /the same version/);
    const v2 = fx.origin.add('paused-v2.bin', generateContent('paused.bin, version 2', 8 * MiB));
    const other = await fsctl(fx.agent, ['set-url', 'paused.bin', fx.origin.url('paused-v2.bin')]);
    assert.match(other.text, /another version/);
    for (const r of [same, other]) assert.equal(r.code, 0, r.stderr);
    const after = (await fx.agent.rpc<FileSummary[]>('files.list')).find(f => f.name === 'paused.bin')!;
    assert.equal(after.state, 'cancelled');
    assert.notEqual((await run('cat', [fx.agent.path('paused.bin')], { timeoutMs: 10_000 })).code, 0, 'reads still fail at once');

    assert.equal((await fsctl(fx.agent, ['resume', 'paused.bin'])).code, 0);
    assert.equal(await hashFile(fx.agent.path('paused.bin'), { timeoutMs: 60_000 }), sha256(v2));
  });
});
