import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { FileSummary, FolderResult, FolderSummary } from '../../agent/control/protocol';
import { AgentProcess, fsctl, hashFile } from '../helpers/agent';
import { useOriginAndAgent } from '../helpers/fixtures';
import { waitForEvent, waitForRemoval } from '../helpers/wait';
import { generateContent, sha256 } from '../../tools/test-origin';

const KiB = 1024;

describe('whole folders: fsctl add --recursive, refresh, --from-file', () => {
  const fx = useOriginAndAgent({}, async ({ origin }) => {
    origin.add('shows/a.mp4', 300 * KiB);
    origin.add('shows/b.mkv', 200 * KiB + 7);
    origin.add('shows/notes.txt', 1000);
    origin.add('shows/season 1/ep1.mp4', 100 * KiB);
    origin.add('shows/season 1/ep2.mp4', 120 * KiB);
    origin.add('shows/season 1/deeper/x.mp4', 10 * KiB);
    origin.add('other/y.mp4', 10 * KiB);
  });

  const files = async (agent: AgentProcess, folder: string): Promise<Record<string, number>> => {
    const ls = await fsctl(agent, ['--json', 'ls', folder]);
    assert.equal(ls.code, 0, ls.stderr);
    return Object.fromEntries((JSON.parse(ls.text) as { files: FileSummary[] }).files.map(f => [f.name, f.size]));
  };

  it('adds every file of an nginx index and its subfolders, with each file\'s own size, keeping the folders', async () => {
    fx.origin.indexStyle = 'nginx';
    const add = await fsctl(fx.agent, ['add', fx.origin.url('shows') + '/', '--recursive']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.text, /^added {4}shows\/season 1\/deeper\/x\.mp4$/m);
    assert.match(add.text, /^shows\/: 6 added, 0 unchanged, 0 changed, 0 removed, 0 failed$/m);
    assert.deepEqual(await files(fx.agent, 'shows'), {
      'shows/a.mp4': 300 * KiB,
      'shows/b.mkv': 200 * KiB + 7,
      'shows/notes.txt': 1000,
      'shows/season 1/ep1.mp4': 100 * KiB,
      'shows/season 1/ep2.mp4': 120 * KiB,
      'shows/season 1/deeper/x.mp4': 10 * KiB,
    });
    assert.equal(await hashFile(fx.agent.path('shows/season 1/ep2.mp4')), sha256(generateContent('shows/season 1/ep2.mp4', 120 * KiB)));
    const again = await fsctl(fx.agent, ['add', fx.origin.url('shows') + '/', '--recursive']);
    assert.match(again.text, /^shows\/: 0 added, 6 unchanged, 0 changed, 0 removed, 0 failed$/m, 'adding it again changes nothing');
  });

  it('python http.server and Apache pages; --name, --include, --exclude and --depth', async () => {
    for (const [style, name] of [['python', 'tv'], ['apache', 'tv2']] as const) {
      fx.origin.indexStyle = style;
      const add = await fsctl(fx.agent, [
        'add', fx.origin.url('shows'), '--recursive', '--name', name, '--include', '*.mp4', '--exclude', 'season 1/ep2.*', '--depth', '1',
      ]);
      assert.equal(add.code, 0, add.stderr);
      assert.deepEqual(Object.keys(await files(fx.agent, name)).sort(), [`${name}/a.mp4`, `${name}/season 1/ep1.mp4`], style);
      const summary = `^${name}/: 2 added, .* 3 left out by --include/--exclude, 1 subfolder\\(s\\) beyond --depth$`;
      assert.match(add.text, new RegExp(summary, 'm'));
    }
  });

  it('refresh: new files appear, changed ones are fetched anew, gone ones go (an open one once closed), after restarts too', async () => {
    fx.origin.indexStyle = 'nginx';
    fx.origin.add('live/keep.bin', 50 * KiB);
    fx.origin.add('live/gone.bin', 50 * KiB);
    fx.origin.add('live/open.bin', 50 * KiB);
    fx.origin.add('live/edit.bin', 50 * KiB);
    assert.equal((await fsctl(fx.agent, ['add', fx.origin.url('live') + '/', '-r'])).code, 0);
    await hashFile(fx.agent.path('live/edit.bin'));

    // A program holds live/open.bin open across the refresh.
    const holdOpen = 'exec 3< "$0"; echo open; read line';
    const holder = spawn('sh', ['-c', holdOpen, fx.agent.path('live/open.bin')], { stdio: ['pipe', 'pipe', 'inherit'] });
    await once(holder.stdout, 'data');
    fx.origin.remove('live/gone.bin');
    fx.origin.remove('live/open.bin');
    fx.origin.add('live/new.bin', 20 * KiB);
    const edited = fx.origin.add('live/edit.bin', generateContent('edit v2', 50 * KiB));

    const refresh = await fsctl(fx.agent, ['refresh', 'live']);
    assert.equal(refresh.code, 0, refresh.stderr);
    assert.match(refresh.text, /^added {4}live\/new\.bin$/m);
    assert.match(refresh.text, /^changed {2}live\/edit\.bin \(the origin serves another version; its cached bytes were dropped\)$/m);
    assert.match(refresh.text, /^removed {2}live\/gone\.bin \(gone from the index\)$/m);
    assert.match(refresh.text, /^removing live\/open\.bin \(gone from the index; leaves once closed\)$/m);
    assert.match(refresh.text, /^live\/: 1 added, 1 unchanged, 1 changed, 2 removed, 0 failed$/m);
    const stillThere = ['live/edit.bin', 'live/keep.bin', 'live/new.bin', 'live/open.bin'];
    assert.deepEqual(Object.keys(await files(fx.agent, 'live')).sort(), stillThere);
    assert.equal(await hashFile(fx.agent.path('live/edit.bin')), sha256(edited));

    holder.stdin.end('\n');
    await waitForRemoval(fx.agent, 'live/open.bin');
    // readdir, not stat: the kernel may keep a name it looked up a moment ago for a second.
    assert.deepEqual((await fs.readdir(fx.agent.path('live'))).sort(), ['edit.bin', 'keep.bin', 'new.bin']);

    const dirs = fx.agent.dirs;
    assert.equal(await fx.agent.stop(), 0);
    fx.agent = await AgentProcess.start({ dirs });
    const listed = JSON.parse((await fsctl(fx.agent, ['--json', 'folders'])).text) as FolderSummary[];
    assert.deepEqual(listed.find(f => f.name === 'live'), {
      name: 'live',
      url: fx.origin.url('live') + '/',
      include: [],
      exclude: [],
      depth: null,
      refreshEveryMs: null,
      files: 3,
      lastRefreshAt: null,
      lastError: null,
    });
    fx.origin.add('live/after-restart.bin', 10 * KiB);
    const again = JSON.parse((await fsctl(fx.agent, ['--json', 'refresh', 'live'])).text) as FolderResult;
    assert.deepEqual(again.added, ['live/after-restart.bin']);
  });

  it('--refresh-every keeps a folder in step on its own', async () => {
    fx.origin.add('auto/first.bin', 10 * KiB);
    const add = await fsctl(fx.agent, ['add', fx.origin.url('auto') + '/', '-r', '--refresh-every', '10s']);
    assert.equal(add.code, 0, add.stderr);
    fx.origin.add('auto/second.bin', 10 * KiB);
    await waitForEvent(fx.agent, e => e.type === 'added' && e.file === 'auto/second.bin', 25_000);
    const tooOften = await fsctl(fx.agent, ['add', fx.origin.url('shows') + '/', '-r', '--name', 'often', '--refresh-every', '2s']);
    assert.equal(tooOften.code, 1);
    assert.match(tooOften.stderr, /refresh-every must be at least 10 s/);
  });

  it('bad folders: not HTML, too many links, a redirect loop, odd names and failing files (the rest is added)', async () => {
    fx.origin.add('plain/', Buffer.from('just text'), { contentType: 'text/plain' });
    const plain = await fsctl(fx.agent, ['add', fx.origin.url('plain') + '/', '-r']);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /is not an index page \(Content-Type text\/plain, not text\/html\)/);

    const links = Array.from({ length: 100_000 }, (_, i) => `<a href="f${i}.bin">f${i}.bin</a>`).join('\n');
    fx.origin.add('huge/', Buffer.from(`<pre>${links}</pre>`), { contentType: 'text/html' });
    const huge = await fsctl(fx.agent, ['add', fx.origin.url('huge') + '/', '-r']);
    assert.equal(huge.code, 1);
    assert.match(huge.stderr, /lists more than 10000 files; narrow it with --include, --exclude or --depth/);

    fx.origin.add('loop/', Buffer.from(''), { redirectTo: '/loop/' });
    const loop = await fsctl(fx.agent, ['add', fx.origin.url('loop') + '/', '-r']);
    assert.equal(loop.code, 1);
    assert.match(loop.stderr, /could not read the index page http:\/\/127\.0\.0\.1:\d+\/loop\/ \(.*redirect/i);

    const oddPage = '<a href="ok.bin">ok</a> <a href="missing.bin">x</a> <a href="a%2Fb.bin">x</a> <a href="..%2F..%2Fetc">x</a>';
    fx.origin.add('odd/', Buffer.from(oddPage), { contentType: 'text/html' });
    fx.origin.add('odd/ok.bin', 5 * KiB);
    const odd = await fsctl(fx.agent, ['add', fx.origin.url('odd') + '/', '-r']);
    assert.equal(odd.code, 1, 'some files failed');
    assert.match(odd.text, /^added {4}odd\/ok\.bin$/m);
    assert.match(odd.text, /^failed {3}odd\/missing\.bin: origin answered HTTP 404/m);
    assert.match(odd.text, /^failed {3}odd\/a\/b\.bin: its name holds a "\/" or a NUL once decoded$/m);
    assert.match(odd.text, /^failed {3}odd\/\.\.\/\.\.\/etc: its name holds a "\/"/m);
    assert.match(odd.text, /^odd\/: 1 added, 0 unchanged, 0 changed, 0 removed, 3 failed$/m);
    assert.deepEqual(Object.keys(await files(fx.agent, 'odd')), ['odd/ok.bin']);

    const rm = await fsctl(fx.agent, ['rm', 'odd']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.text, 'removed the folder odd and its 1 file(s)\n');
    assert.ok(!(await fs.readdir(fx.agent.path(''))).includes('odd'));
  });

  it('--from-file: one line per URL, an optional name, failures named by line, one summary', async () => {
    fx.origin.add('list/one.bin', 3 * KiB);
    fx.origin.add('list/two.bin', 4 * KiB);
    const list = path.join(fx.agent.dirs.dir, 'list.txt');
    await fs.writeFile(list, [
      '# links from the API',
      fx.origin.url('list/one.bin'),
      '',
      `${fx.origin.url('list/two.bin')}   picked/Second one.bin`,
      'this is not a link',
      fx.origin.url('list/none.bin'),
      fx.origin.url('list/one.bin'),
    ].join('\n'));
    const r = await fsctl(fx.agent, ['add', '--from-file', list]);
    assert.equal(r.code, 1, 'some lines failed');
    assert.match(r.text, /^failed {3}line 5: not of the form "URL \[NAME\]" with an http\(s\) URL$/m);
    assert.match(r.text, /^failed {3}line 6 http:\/\/127\.0\.0\.1:\d+\/list\/none\.bin: origin answered HTTP 404/m);
    assert.match(r.text, /^2 added, 1 already in the mount, 2 failed$/m);
    assert.equal(await hashFile(fx.agent.path('picked/Second one.bin')), sha256(generateContent('list/two.bin', 4 * KiB)));
    const listed = await fx.agent.rpc<FileSummary[]>('files.list');
    assert.equal(listed.find(f => f.name === 'one.bin')?.size, 3 * KiB);
  });
});
