import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { childEnv, fsctl, FSCTL_BIN, hashFile, readRange } from '../helpers/agent';
import { waitForWaiters } from '../helpers/wait';

const MiB = 1024 * 1024;

describe('fsctl status --watch on a terminal', () => {
  const fx = useOriginAndAgent({}, async ({ origin, agent }) => {
    origin.add('talk.bin', 3 * MiB);
    await agent.add(origin.url('talk.bin'));
    await hashFile(agent.path('talk.bin'));
  });

  it('shows the agent\'s header and sizes in one unit, and says so when the agent goes away', async () => {
    // `script` gives fsctl a pseudo-terminal, as a user's shell would.
    const cmd = `stty cols 200 rows 40; exec ${process.execPath} ${FSCTL_BIN} --socket ${fx.agent.dirs.socket} status --watch`;
    const view = spawn('script', ['-qfec', cmd, '/dev/null'], { env: childEnv({ TERM: 'xterm' }), stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = once(view, 'exit').then(([code]) => code as number | null);
    let screen = '';
    view.stdout.setEncoding('utf8');
    const drawn = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame with talk.bin in 20 s:\n${screen}`)), 20_000);
      view.stdout.on('data', (s: string) => {
        screen += s;
        if (/talk\.bin/.test(screen) && /waiting reads/.test(screen)) { clearTimeout(timer); resolve(); }
      });
    });
    try {
      await drawn;
      assert.match(screen, new RegExp(`${fx.agent.mount} \\(mounted\\) · cache .* of .* · up .* · \\d+ downloading · \\d+ waiting reads`));
      assert.match(screen, /100% complete \| talk\.bin \| 3\.0 MiB of 3\.0 MiB \| -/);
      await fx.agent.stop('SIGTERM');
      assert.equal(await exited, 3, 'exits as fsctl does when no agent answers');
      assert.match(screen, /the agent went away/);
    } finally {
      if (view.exitCode === null) view.kill('SIGKILL');
    }
  });
});

describe('fsctl status --watch on a small terminal', () => {
  const fx = useOriginAndAgent();

  it('fits a terminal with fewer rows than files, those that matter first, and honours a FOLDER', async () => {
    // 40 files in batch/, one of them stalled with a reader waiting on it, and a file outside the folder.
    const list: string[] = [];
    for (let i = 0; i < 40; i++) {
      fx.origin.add(`batch/f${String(i).padStart(2, '0')}.bin`, 1024);
      list.push(`${fx.origin.url(`batch/f${String(i).padStart(2, '0')}.bin`)} batch/f${String(i).padStart(2, '0')}.bin`);
    }
    fx.origin.add('batch/zz-stalled.bin', 8 * MiB, { stallAt: MiB });
    fx.origin.add('outside.bin', 1024);
    list.push(`${fx.origin.url('outside.bin')} outside.bin`);
    list.push(`${fx.origin.url('batch/zz-stalled.bin')} batch/zz-stalled.bin`);
    const listFile = `${fx.agent.dirs.dir}/list.txt`;
    await fs.writeFile(listFile, list.join('\n') + '\n');
    const added = await fsctl(fx.agent, ['add', '--from-file', listFile]);
    assert.equal(added.code, 0, added.stderr);
    const reader = readRange(fx.agent.path('batch/zz-stalled.bin'), 4 * MiB, 4096, { timeoutMs: 60_000 });
    await waitForWaiters(fx.agent, w => w.some(x => x.file === 'batch/zz-stalled.bin'));

    const rows = 12;
    const cmd = `stty cols 100 rows ${rows}; exec ${process.execPath} ${FSCTL_BIN} --socket ${fx.agent.dirs.socket} status --watch batch`;
    const view = spawn('script', ['-qfec', cmd, '/dev/null'], { env: childEnv({ TERM: 'xterm' }), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    view.stdout.setEncoding('utf8');
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no second frame in 20 s:\n${screen}`)), 20_000);
        view.stdout.on('data', (s: string) => {
          screen += s;
          if (screen.includes('\x1b[0J')) { clearTimeout(timer); resolve(); } // a frame redrawn over the first
        });
      });
      const frame = screen.slice(screen.lastIndexOf('\x1b[0J') + 4).split(/\r?\n/).filter(l => l !== '');
      assert.ok(frame.length <= rows - 1, `the frame fits: ${frame.length} lines\n${frame.join('\n')}`);
      assert.ok(frame.every(l => [...l].length <= 100), frame.join('\n'));
      assert.match(frame[0], /^41 files under batch\/ · .*\(mounted\)/);
      assert.match(frame[1], /% (downloading|stalled) · 1 waiting \| batch\/zz-stalled\.bin \|/, 'the file a reader waits on comes first');
      assert.match(frame.at(-1)!, /^… 32 more \(32 idle\): fsctl ls batch lists them all$/);
      assert.doesNotMatch(screen, /outside\.bin/, 'a file outside the folder is not shown');
    } finally {
      view.kill('SIGKILL');
      await fsctl(fx.agent, ['cancel', 'batch/zz-stalled.bin']);
      assert.notEqual((await reader).code, 0);
    }
  });
});
