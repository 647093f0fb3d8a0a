import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AgentProcess, hashFile, makeDirs } from '../helpers/agent';
import { useCleanups } from '../helpers/fixtures';
import { waitForFile, waitForText } from '../helpers/wait';
import { sha256, TestOrigin } from '../../tools/test-origin';

const MiB = 1024 * 1024;

/**
 * A stand-in `systemd-inhibit` first on the agent's PATH: it notes its arguments when it
 * starts and `released` when the agent lets it go (SIGTERM, or the end of its stdin). Its
 * `cat` reads the agent's pipe through fd 3: sh gives a background job /dev/null as stdin.
 */
async function standInInhibitor (dir: string, behaviour: 'holds' | 'no-logind'): Promise<{ bin: string; record: string }> {
  const bin = path.join(dir, 'bin');
  const record = path.join(dir, 'inhibitor.log');
  await fs.mkdir(bin, { recursive: true });
  const body = behaviour === 'holds'
    ? `released () { trap '' TERM; echo released >> '${record}'; exit 0; }
trap released TERM
echo "start $*" >> '${record}'
exec 3<&0
cat <&3 > /dev/null &
wait $!
released`
    : `echo "start $*" >> '${record}'
echo "Failed to connect to bus: No such file or directory" >&2
exit 1`;
  await fs.writeFile(path.join(bin, 'systemd-inhibit'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return { bin, record };
}

describe('no sleep mid-transfer', () => {
  const cleanup = useCleanups();

  async function setup (
    behaviour: 'holds' | 'no-logind', args: string[] = []
  ): Promise<{ origin: TestOrigin; agent: AgentProcess; record: string }> {
    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const dirs = await makeDirs();
    const { bin, record } = await standInInhibitor(dirs.dir, behaviour);
    const agent = await AgentProcess.start({ dirs, args, env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    cleanup(() => agent.cleanup());
    return { origin, agent, record };
  }

  it('holds an idle and sleep lock while a file downloads, and lets it go once none does', async () => {
    const { origin, agent, record } = await setup('holds');
    const content = origin.add('movie.bin', 12 * MiB, { throttle: 4 * MiB });
    await agent.add(origin.url('movie.bin'));
    const reading = hashFile(agent.path('movie.bin'), { timeoutMs: 60_000 });
    const started = await waitForText(record, t => t.includes('start'));
    const expected = 'start --what=idle:sleep --who=fusestream --why=Streaming files to programs reading the mount --mode=block cat';
    assert.equal(started.trim(), expected);
    assert.equal(await reading, sha256(content));
    await waitForFile(agent, 'movie.bin', f => f.state === 'complete');
    const released = await waitForText(record, t => t.includes('released'), 10_000);
    assert.deepEqual(released.trim().split('\n').map(l => l.split(' ')[0]), ['start', 'released'], 'one lock, released once');

    // The next download takes it again.
    const second = origin.add('second.bin', 8 * MiB, { throttle: 4 * MiB }); // 2 s: past the second before a lock is taken
    await agent.add(origin.url('second.bin'));
    assert.equal(await hashFile(agent.path('second.bin'), { timeoutMs: 60_000 }), sha256(second));
    const again = await waitForText(record, t => t.trim().split('\n').length >= 4, 10_000);
    assert.deepEqual(again.trim().split('\n').map(l => l.split(' ')[0]), ['start', 'released', 'start', 'released']);
  });

  it('--no-inhibit-sleep: no lock is ever taken', async () => {
    const { origin, agent, record } = await setup('holds', ['--no-inhibit-sleep']);
    const content = origin.add('movie.bin', 8 * MiB, { throttle: 4 * MiB });
    await agent.add(origin.url('movie.bin'));
    assert.equal(await hashFile(agent.path('movie.bin'), { timeoutMs: 60_000 }), sha256(content));
    // The download took two seconds; an inhibitor would have been started after its first.
    await assert.rejects(fs.stat(record), { code: 'ENOENT' });
  });

  it('where no inhibitor can run (no logind), says so once and downloads as ever', async () => {
    const { origin, agent, record } = await setup('no-logind');
    const first = origin.add('a.bin', 12 * MiB, { throttle: 8 * MiB }); // 1.5 s each: past the second before a lock is taken
    const second = origin.add('b.bin', 12 * MiB, { throttle: 8 * MiB });
    await agent.add(origin.url('a.bin'));
    await agent.add(origin.url('b.bin'));
    assert.equal(await hashFile(agent.path('a.bin'), { timeoutMs: 60_000 }), sha256(first));
    assert.equal(await hashFile(agent.path('b.bin'), { timeoutMs: 60_000 }), sha256(second));
    assert.equal((await fs.readFile(record, 'utf8')).trim().split('\n').length, 1, 'tried once');
    const warnings = agent.stderr.split('\n').filter(l => l.includes('cannot keep the machine awake'));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /ended: Failed to connect to bus/);
  });
});
