import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { useOriginAndAgent } from '../helpers/fixtures';
import { childEnv, FSCTL_BIN, hashFile } from '../helpers/agent';

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
      assert.match(screen, /talk\.bin \| 3\.0 MiB of 3\.0 MiB \| - \| complete/);
      await fx.agent.stop('SIGTERM');
      assert.equal(await exited, 3, 'exits as fsctl does when no agent answers');
      assert.match(screen, /the agent went away/);
    } finally {
      if (view.exitCode === null) view.kill('SIGKILL');
    }
  });
});
