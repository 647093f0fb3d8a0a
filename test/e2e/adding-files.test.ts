import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { AgentProcess, fsctl, hashFile, run } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

describe('fsctl add and fsctl ls', () => {
  const fx = useOriginAndAgent();

  it('adds a URL under its decoded last segment and shows it with its size', async () => {
    const content = fx.origin.add('my video.mp4', 123_457);
    const r = await fsctl(fx.agent, ['add', fx.origin.url('my video.mp4')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text.trim(), 'my video.mp4');
    const st = await fs.stat(fx.agent.path('my video.mp4'));
    assert.equal(st.size, 123_457);
    assert.equal(st.mode & 0o777, 0o444);
    assert.equal(await hashFile(fx.agent.path('my video.mp4')), sha256(content));
  });

  it('places a name with "/" in folders the mount shows', async () => {
    fx.origin.add('clip.bin', 1000);
    const r = await fsctl(fx.agent, ['add', fx.origin.url('clip.bin'), '--name', 'videos/2026/clip.bin']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await fs.stat(fx.agent.path('videos/2026'))).isDirectory());
    assert.deepEqual(await fs.readdir(fx.agent.path('videos')), ['2026']);
    assert.deepEqual(await fs.readdir(fx.agent.path('videos/2026')), ['clip.bin']);
  });

  it('treats the same URL under the same name as a no-op, and refuses another URL there', async () => {
    fx.origin.add('same.bin', 10);
    fx.origin.add('other.bin', 10);
    assert.equal((await fsctl(fx.agent, ['add', fx.origin.url('same.bin')])).code, 0);
    const again = await fsctl(fx.agent, ['--json', 'add', fx.origin.url('same.bin')]);
    assert.equal(again.code, 0);
    assert.equal(JSON.parse(again.text).added, false);
    const said = await fsctl(fx.agent, ['add', fx.origin.url('same.bin')]);
    assert.equal(said.text, 'same.bin (already in the mount from this source)\n');
    const clash = await fsctl(fx.agent, ['add', fx.origin.url('other.bin'), '--name', 'same.bin']);
    assert.equal(clash.code, 1);
    assert.match(clash.stderr, /same\.bin is already in the mount, from URL http:\/\/127\.0\.0\.1:\d+\/same\.bin$/m);
  });

  it('refuses bad names with a message naming the problem, and adds nothing', async () => {
    fx.origin.add('n.bin', 10);
    const cases: Array<[string, RegExp]> = [
      ['a//b', /empty segment/],
      ['/lead', /empty segment/],
      ['../up', /"\.\." segment/],
      ['a/./b', /"\." segment/],
      ['x'.repeat(300), /longer than 255 bytes/],
      ['my video.mp4/inside', /is a file in the mount/],
      ['videos', /is a folder/],
    ];
    for (const [name, message] of cases) {
      const r = await fsctl(fx.agent, ['add', fx.origin.url('n.bin'), '--name', name]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
    }
    const nul = await fx.agent.rpc('files.add', { url: fx.origin.url('n.bin'), name: 'a\0b' }).catch((e: Error) => e);
    assert.match(String(nul), /NUL/);
    const list = await fx.agent.rpc<Array<{ name: string }>>('files.list');
    assert.ok(!list.some(f => f.name.includes('up') || f.name.includes('lead') || f.name.includes('\0')));
  });

  it('gives a clear error for an unreachable URL, a 404 and a missing length', async () => {
    const unreachable = await fsctl(fx.agent, ['add', 'http://127.0.0.1:1/nothing.bin']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /origin unreachable/);
    const missing = await fsctl(fx.agent, ['add', fx.origin.url('not-there.bin')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /HTTP 404/);
    fx.origin.add('nolength.bin', 100, { noLength: true, noRange: true });
    const nolength = await fsctl(fx.agent, ['add', fx.origin.url('nolength.bin')]);
    assert.equal(nolength.code, 1);
    assert.match(nolength.stderr, /Content-Length/);
    const notHttp = await fx.agent.rpc('files.add', { url: 'ftp://127.0.0.1/x' }).catch((e: Error) => e);
    assert.match(String(notHttp), /only http and https/);
    const names = (await fx.agent.rpc<Array<{ name: string }>>('files.list')).map(f => f.name);
    assert.ok(!names.includes('nothing.bin') && !names.includes('not-there.bin') && !names.includes('nolength.bin'));
  });

  it('lists every file with size, bytes downloaded and state, in text and JSON', async () => {
    const text = await fsctl(fx.agent, ['ls']);
    assert.equal(text.code, 0);
    assert.match(text.text, /my video\.mp4.*121 KiB.*100%.*complete/);
    const json = await fsctl(fx.agent, ['status', '--json']);
    const files = (JSON.parse(json.text) as { files: Array<{ name: string; size: number; presentBytes: number; state: string }> }).files;
    const clip = files.find(f => f.name === 'videos/2026/clip.bin')!;
    assert.equal(clip.size, 1000);
    assert.equal(clip.state, 'idle');
  });

  it('refuses every write with EROFS', async () => {
    const touch = await run('touch', [fx.agent.path('new-file')]);
    assert.notEqual(touch.code, 0);
    assert.match(touch.stderr, /Read-only file system/);
    const write = await run('sh', ['-c', `echo x >> "${fx.agent.path('my video.mp4')}"`]);
    assert.match(write.stderr, /Read-only file system/);
    const rm = await run('rm', ['-f', fx.agent.path('my video.mp4')]);
    assert.match(rm.stderr, /Read-only file system/);
  });

  it('says in one line how to start the agent when none runs, and exits 3', async () => {
    const r = await fsctl({ dirs: { ...fx.agent.dirs, socket: `${fx.agent.dirs.dir}/nobody.sock` } } as AgentProcess, ['ls']);
    assert.equal(r.code, 3);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /no fusestream agent is running.*start one with: fusestream-agent --socket .*nobody\.sock$/m);
  });

  it('refuses a folder\'s index page as a file, with or without --name, and says to add it with --recursive', async () => {
    fx.origin.add('show/e1.mp4', 1000);
    fx.origin.add('show/e2.mp4', 1000);
    for (const args of [[fx.origin.url('show/')], [fx.origin.url('show'), '--name', 'show.html']]) {
      const r = await fsctl(fx.agent, ['add', ...args]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /show\/ (is a folder's index page, not a file|ends with "\/", as a folder's URL does): add the files in it with fsctl add --recursive URL/);
    }
    assert.doesNotMatch((await fsctl(fx.agent, ['ls'])).text, /show/);
  });

  it('reads -H before the URL as one header, and the URL as the URL', async () => {
    fx.origin.add('with-header.bin', 1000);
    const r = await fsctl(fx.agent, ['add', '-H', 'X-Test: 1', '-H', 'X-Other: 2', fx.origin.url('with-header.bin')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text.trim(), 'with-header.bin');
  });

  it('shows a name holding a newline or an escape on one row, escaped; --json gives it exactly', async () => {
    fx.origin.add('odd.bin', 1000);
    const name = 'odd\nname\x1b[31m.bin';
    assert.equal((await fsctl(fx.agent, ['add', fx.origin.url('odd.bin'), '--name', name])).code, 0);
    const ls = (await fsctl(fx.agent, ['ls'])).text;
    assert.match(ls, /│ odd\\nname\\x1b\[31m\.bin +│ 1000 B/);
    assert.ok(!ls.includes('\x1b'), 'no escape sequence reaches the terminal');
    const listed = JSON.parse((await fsctl(fx.agent, ['ls', '--json'])).text) as { files: Array<{ name: string }> };
    assert.ok(listed.files.some(f => f.name === name));
    assert.equal((await fsctl(fx.agent, ['rm', name])).code, 0);
  });

  it('exits 2 on a usage error', async () => {
    const r = await fsctl(fx.agent, ['add']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give a URL, a --url-command, or both/);
    const nameless = await fsctl(fx.agent, ['add', '--url-command', 'mint-url']);
    assert.equal(nameless.code, 2);
    assert.match(nameless.stderr, /a file added by --url-command alone needs --name/);
    const unclosed = await fsctl(fx.agent, ['add', '--name', 'x', '--url-command', 'mint-url "open']);
    assert.equal(unclosed.code, 2);
    assert.match(unclosed.stderr, /--url-command: the command has an unclosed " quote/);
    for (const [args, message] of [
      [['add', 'example.com/talk.mp4'], /"example\.com\/talk\.mp4" is not an http:\/\/ or https:\/\/ URL/],
      [['add', 'ftp://example.com/talk.mp4'], /is not an http:\/\/ or https:\/\/ URL/],
      [['add', fx.origin.url('x.bin'), '--sha256', 'abc'], /--sha256 takes the 64 hex digits of a sha-256 digest, not "abc"/],
      [['add', 'not a url/', '--recursive'], /is not an http:\/\/ or https:\/\/ URL/],
    ] as Array<[string[], RegExp]>) {
      const bad = await fsctl(fx.agent, args);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, message);
    }
  });
});
