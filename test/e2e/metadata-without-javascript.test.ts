import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentStatus } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { fsctl, run } from '../helpers/agent';

// getattr and readdir are answered by the FUSE threads from their copy of the catalogue
// (docs/FUSE-BINDING.md), so a listing never waits for a busy event loop. What a listing
// shows must be what the catalogue holds, at every moment: a change drops the copy at once.
describe('listing the mount without JavaScript', () => {
  const fx = useOriginAndAgent();
  const answeredInC = async (): Promise<number> => (await fx.agent.rpc<AgentStatus>('agent.status')).fastMetadata;
  /** `stat` of each path, from another process: name, size, octal mode, type. */
  const stat = async (...paths: string[]): Promise<string[]> => {
    const r = await run('stat', ['-c', '%n %s %a %F', ...paths.map(p => fx.agent.path(p))]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.toString().trim().split('\n').map(l => l.slice(fx.agent.mount.length + 1));
  };
  const list = async (dir = ''): Promise<string[]> => {
    const r = await run('ls', ['-a', fx.agent.path(dir)]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.toString().trim().split('\n');
  };

  it('ls and stat show each file and folder as the catalogue has it', async () => {
    fx.origin.add('top.bin', 1000);
    fx.origin.add('deep.bin', 123_457);
    await fx.agent.add(fx.origin.url('top.bin'));
    await fx.agent.add(fx.origin.url('deep.bin'), 'shows/season 1/deep.bin');
    const before = await answeredInC(); // a request later: the copy with both files is in place
    assert.deepEqual(await list(), ['.', '..', 'shows', 'top.bin']);
    assert.deepEqual(await list('shows/season 1'), ['.', '..', 'deep.bin']);
    assert.deepEqual(await stat('top.bin', 'shows', 'shows/season 1', 'shows/season 1/deep.bin'), [
      'top.bin 1000 444 regular file',
      'shows 4096 555 directory',
      'shows/season 1 4096 555 directory',
      'shows/season 1/deep.bin 123457 444 regular file',
    ]);
    assert.ok(await answeredInC() > before, 'the FUSE threads answered');
    const missing = await run('stat', [fx.agent.path('no such file')]);
    assert.match(missing.stderr, /No such file or directory/);
    const notDir = await run('ls', [fx.agent.path('top.bin/inside')]);
    assert.match(notDir.stderr, /Not a directory/);
  });

  it('a file added or removed shows in the very next listing', async () => {
    fx.origin.add('new.bin', 10);
    await fx.agent.add(fx.origin.url('new.bin'), 'fresh/new.bin');
    assert.deepEqual(await list('fresh'), ['.', '..', 'new.bin'], 'listed as soon as add returned');
    assert.equal((await fsctl(fx.agent, ['rm', 'fresh/new.bin'])).code, 0);
    assert.ok(!(await list()).includes('fresh'), 'its folder went with its last file, as soon as rm returned');
    await fx.agent.add(fx.origin.url('new.bin'), 'fresh/again.bin');
    const before = await answeredInC();
    assert.deepEqual(await list('fresh'), ['.', '..', 'again.bin']);
    assert.ok(await answeredInC() > before, 'the FUSE threads answered from the new copy');
  });
});
