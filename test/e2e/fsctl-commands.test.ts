import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, FSCTL_BIN, hashFile, run } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';
import { waitForEvent, waitForFile } from '../helpers/wait';

const MiB = 1024 * 1024;

describe('every fsctl command against a live agent, in human and --json form', () => {
  let content: Buffer;
  const fx = useOriginAndAgent({}, async ({ origin, agent }) => {
    content = origin.add('movie.mkv', 6 * MiB);
    origin.add('other.bin', 2 * MiB);
    assert.equal((await fsctl(agent, ['add', origin.url('movie.mkv'), '--name', 'films/movie.mkv'])).code, 0);
    assert.equal((await fsctl(agent, ['add', origin.url('other.bin')])).code, 0);
  });

  it('status: a header line and a table; --json the agent and files', async () => {
    const human = await fsctl(fx.agent, ['status']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.text, new RegExp(`^${fx.agent.mount} \\(mounted\\) · cache .* of .* · up .* · 0 downloading · 0 waiting reads`));
    assert.match(human.text, /films\/movie\.mkv\s*│\s*6\.0 MiB\s*│\s*0%\s*│\s*-\s*│\s*idle/);
    assert.ok(!human.text.includes('\u001b['), 'no colour when not on a terminal');
    const json = JSON.parse((await fsctl(fx.agent, ['status', '--json'])).text);
    assert.equal(json.agent.mounted, true);
    assert.equal(json.files.length, 2);
  });

  it('prefetch downloads the whole file with no reader; info shows it in detail', async () => {
    const pre = await fsctl(fx.agent, ['prefetch', 'films/movie.mkv']);
    assert.equal(pre.code, 0, pre.stderr);
    assert.match(pre.text, /prefetching films\/movie\.mkv/);
    await waitForFile(fx.agent, 'films/movie.mkv', f => f.state === 'complete');
    const info = await fsctl(fx.agent, ['info', 'films/movie.mkv']);
    assert.match(info.text, /size\s+6\.0 MiB \(6291456 bytes\)/);
    assert.match(info.text, /downloaded\s+6\.0 MiB \(100%\) in 1 range/);
    assert.match(info.text, /etag\s+"/);
    const json = JSON.parse((await fsctl(fx.agent, ['--json', 'info', 'films/movie.mkv'])).text);
    assert.deepEqual(json.ranges, [[0, 6 * MiB]]);
    assert.equal(json.origin.acceptRanges, true);
  });

  it('takes a path inside the mount wherever it takes a name', async () => {
    const byPath = await fsctl(fx.agent, ['--json', 'info', `${fx.agent.mount}/films/movie.mkv`]);
    assert.equal(byPath.code, 0, byPath.stderr);
    assert.equal(JSON.parse(byPath.text).name, 'films/movie.mkv');
    const outside = await fsctl(fx.agent, ['info', '/etc/passwd']);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /not inside the mount/);
    const missing = await fsctl(fx.agent, ['info', 'nope.bin']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no file named nope\.bin/);
  });

  it('pin keeps bytes from evict --all; unpin lets them go; evict <file> frees one file', async () => {
    assert.match((await fsctl(fx.agent, ['pin', 'films/movie.mkv'])).text, /pinned films\/movie\.mkv/);
    const all = JSON.parse((await fsctl(fx.agent, ['--json', 'evict', '--all'])).text);
    assert.equal(all.freedBytes, 0);
    assert.equal(JSON.parse((await fsctl(fx.agent, ['--json', 'info', 'films/movie.mkv'])).text).presentBytes, 6 * MiB);
    const refused = await fsctl(fx.agent, ['evict', 'films/movie.mkv']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /films\/movie\.mkv is pinned; unpin it first, or evict it with --force/);
    assert.equal(JSON.parse((await fsctl(fx.agent, ['--json', 'info', 'films/movie.mkv'])).text).presentBytes, 6 * MiB);
    assert.match((await fsctl(fx.agent, ['evict', '--force', 'films/movie.mkv'])).text, /freed 6\.0 MiB/);
    assert.equal(await hashFile(fx.agent.path('films/movie.mkv')), sha256(content));
    assert.match((await fsctl(fx.agent, ['unpin', 'films/movie.mkv'])).text, /unpinned/);
    const one = await fsctl(fx.agent, ['evict', 'films/movie.mkv']);
    assert.match(one.text, /freed 6\.0 MiB/);
    assert.equal(JSON.parse((await fsctl(fx.agent, ['--json', 'info', 'films/movie.mkv'])).text).presentBytes, 0);
    assert.equal(await hashFile(fx.agent.path('films/movie.mkv')), sha256(content), 'evicted bytes stream again');
    const usage = await fsctl(fx.agent, ['evict']);
    assert.equal(usage.code, 2);
  });

  it('evict --all drops resting bytes only: a running prefetch goes on, a cancelled file stays cancelled', async () => {
    fx.origin.add('fetching.bin', 64 * MiB, { throttle: 8 * MiB });
    fx.origin.add('stopped.bin', 2 * MiB);
    await fsctl(fx.agent, ['add', fx.origin.url('fetching.bin')]);
    await fsctl(fx.agent, ['add', fx.origin.url('stopped.bin')]);
    await fsctl(fx.agent, ['prefetch', 'stopped.bin']);
    await waitForFile(fx.agent, 'stopped.bin', f => f.state === 'complete');
    await fsctl(fx.agent, ['prefetch', 'fetching.bin']);
    await waitForFile(fx.agent, 'fetching.bin', f => f.presentBytes > 0);
    await fsctl(fx.agent, ['evict', '--all']);
    const info = (name: string): Promise<{ state: string; presentBytes: number }> =>
      fsctl(fx.agent, ['--json', 'info', name]).then(r => JSON.parse(r.text));
    const fetching = await info('fetching.bin');
    assert.equal(fetching.state, 'downloading', 'the prefetch was not stopped');
    assert.ok(fetching.presentBytes > 0, 'its bytes were kept');
    assert.equal((await info('stopped.bin')).presentBytes, 0, 'resting bytes went');
    await fsctl(fx.agent, ['cancel', 'fetching.bin']);
    await fsctl(fx.agent, ['evict', 'fetching.bin']);
    const cancelled = await info('fetching.bin');
    assert.equal(cancelled.state, 'cancelled', 'dropping its bytes kept the cancel');
    assert.equal(cancelled.presentBytes, 0);
    await fsctl(fx.agent, ['rm', 'fetching.bin']);
    await fsctl(fx.agent, ['rm', 'stopped.bin']);
  });

  it('ls keeps a failed file\'s error out of the table; info shows it, and why a retrying download failed', async () => {
    fx.origin.add('flaky.bin', 4 * MiB, { failFirst: { status: 503, times: 1000 } });
    fx.origin.add('gone.bin', 4 * MiB, { dropAt: MiB, statusAfterFirstGet: 404 });
    await fsctl(fx.agent, ['add', fx.origin.url('flaky.bin')]);
    await fsctl(fx.agent, ['add', fx.origin.url('gone.bin')]);
    await fsctl(fx.agent, ['prefetch', 'gone.bin']);
    await waitForFile(fx.agent, 'gone.bin', f => f.state === 'error');
    const ls = await fsctl(fx.agent, ['ls']);
    assert.match(ls.text, /gone\.bin\s*│.*│\s*error\s*│/);
    assert.doesNotMatch(ls.text, /404/, 'the error is not in the table');
    assert.match(ls.text, /^1 failed; the reason: fsctl info gone\.bin$/m);
    assert.match((await fsctl(fx.agent, ['info', 'gone.bin'])).text, /^last error\s+origin answered HTTP 404/m);
    const retried = waitForEvent(fx.agent, e => e.type === 'retry' && e.file === 'flaky.bin');
    await fsctl(fx.agent, ['prefetch', 'flaky.bin']);
    await retried;
    assert.match((await fsctl(fx.agent, ['info', 'flaky.bin'])).text, /^last error\s+retrying after: origin answered HTTP 503/m);
    await fsctl(fx.agent, ['rm', 'flaky.bin']);
    await fsctl(fx.agent, ['rm', 'gone.bin']);
  });

  it('cancel fails reads of missing bytes at once until resume', async () => {
    fx.origin.add('slow.bin', 16 * MiB, { throttle: 2 * MiB });
    await fsctl(fx.agent, ['add', fx.origin.url('slow.bin')]);
    assert.match((await fsctl(fx.agent, ['cancel', 'slow.bin'])).text, /cancelled slow\.bin/);
    const read = await run(
      'dd',
      [`if=${fx.agent.path('slow.bin')}`, 'bs=64k', 'skip=100', 'count=1', 'status=none'],
      { timeoutMs: 10_000 }
    );
    assert.match(read.stderr, /Input\/output error/);
    assert.ok(read.ms < 2000);
    fx.origin.setFaults('slow.bin', {});
    const resumed = JSON.parse((await fsctl(fx.agent, ['--json', 'resume', 'slow.bin'])).text);
    assert.equal(resumed.name, 'slow.bin');
    await waitForFile(fx.agent, 'slow.bin', f => f.state === 'complete');
  });

  it('waiters says none are waiting, in both forms', async () => {
    assert.match((await fsctl(fx.agent, ['waiters'])).text, /no reads are waiting/);
    assert.deepEqual(JSON.parse((await fsctl(fx.agent, ['--json', 'waiters'])).text), []);
  });

  it('rm drops the file: gone from the mount and the list', async () => {
    const r = await fsctl(fx.agent, ['rm', 'other.bin']);
    assert.match(r.text, /removed other\.bin/);
    await assert.rejects(fs.stat(fx.agent.path('other.bin')), { code: 'ENOENT' });
    const names = JSON.parse((await fsctl(fx.agent, ['--json', 'ls'])).text).files.map((f: { name: string }) => f.name);
    assert.ok(!names.includes('other.bin'));
  });

  it('stops quietly when its reader goes away (fsctl ls | head -1), in both forms', async () => {
    const fsctlCmd = `${process.execPath} ${FSCTL_BIN} --socket ${fx.agent.dirs.socket}`;
    // `true` reads nothing and exits at once: every write fsctl makes meets a closed pipe.
    for (const args of ['ls', '--json ls', 'info films/movie.mkv', 'waiters', 'config']) {
      const r = await run('sh', ['-c', `${fsctlCmd} ${args} | true`]);
      assert.equal(r.stderr, '', `fsctl ${args}: ${r.stderr}`);
    }
    const head = await run('sh', ['-c', `${fsctlCmd} ls | head -1`]);
    assert.equal(head.stderr, '');
    assert.match(head.stdout.toString(), /\(mounted\)/);
  });

  it('every command has --help', async () => {
    const commands = ['add', 'rm', 'status', 'info', 'cancel', 'resume', 'pin', 'unpin', 'evict', 'prefetch', 'waiters', 'events',
      'ping', 'stop'];
    for (const cmd of commands) {
      const r = await fsctl(fx.agent, [cmd, '--help']);
      assert.equal(r.code, 0, cmd);
      assert.match(r.text, /^Usage: fsctl /, cmd);
    }
  });

  it('ping, then stop: the agent unmounts and exits 0', async () => {
    assert.deepEqual(JSON.parse((await fsctl(fx.agent, ['--json', 'ping'])).text), { ok: true });
    const stop = JSON.parse((await fsctl(fx.agent, ['--json', 'stop'])).text);
    assert.equal(stop.stopping, true);
    assert.equal(await fx.agent.exited, 0);
  });
});
