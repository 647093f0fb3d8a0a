import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { childEnv, run } from '../helpers/agent';
import { sha256, TestOrigin } from '../../tools/test-origin';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const EXAMPLE_URL = 'https://example.com/videos/talk.mp4';

/** The shell lines of the README's "Quick start" section, comments stripped, in order. */
async function quickStartLines (): Promise<string[]> {
  const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find(s => s.startsWith('Quick start'));
  assert.ok(section !== undefined, 'README has a Quick start section');
  const lines: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1].split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (cmd !== '') lines.push(cmd);
    }
  }
  return lines;
}

describe('the README quick start, as written, in a fresh HOME', () => {
  const cleanup = useCleanups();

  it('starts the agent on defaults, adds a URL, lists, reads and reports it', async () => {
    const lines = await quickStartLines();
    const start = lines.find(l => l.endsWith('npm start'));
    const test = lines.find(l => l.endsWith('npm test'));
    assert.equal(start, 'npm ci && npm start');
    assert.equal(test, 'npm ci && npm test');
    const ci = await fs.readFile(path.join(ROOT, '.ci', 'run'), 'utf8');
    assert.equal(ci.trim().split('\n').pop(), test, '.ci/run ends with exactly the README\'s test command');

    const origin = await TestOrigin.start();
    cleanup(() => origin.close());
    const content = origin.add('videos/talk.mp4', 3 * 1024 * 1024 + 5);
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-qs-'));
    const out = path.join(home, 'copy-of-talk.mp4');
    const env = childEnv({ HOME: home, NO_COLOR: '1' });

    // `npm ci` already ran for this suite (it is the first half of the test command); the rest runs as written.
    const agent = spawn('sh', ['-c', start.replace(/^npm ci && /, '')], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    // Taken now: the agent may be gone before anything later starts listening for its exit.
    const exited = once(agent, 'exit').then(([code]) => code as number | null);
    let stderr = '';
    agent.stderr.setEncoding('utf8');
    const ready = new Promise<void>((resolve, reject) => {
      agent.stderr.on('data', (s: string) => { stderr += s; if (/"msg":"ready"/.test(stderr)) resolve(); });
      agent.once('exit', code => reject(new Error(`npm start exited with ${code}: ${stderr}`)));
    });
    cleanup(async () => {
      if (agent.exitCode === null && agent.signalCode === null) {
        process.kill(-agent.pid!, 'SIGTERM');
        await exited;
      }
      await run('fusermount', ['-uz', path.join(home, 'FuseStream')]);
      await fs.rm(home, { recursive: true, force: true });
    });
    await ready;

    const usage = lines.filter(l => l !== start && l !== test && !l.startsWith('sudo '));
    assert.deepEqual(
      usage.map(l => l.split(' ')[0] + ' ' + l.split(' ')[1]),
      ['npx fsctl', 'ls -l', 'cat ~/FuseStream/talk.mp4', 'npx fsctl']
    );
    const results: string[] = [];
    for (const line of usage) {
      const cmd = line.replace(EXAMPLE_URL, origin.url('videos/talk.mp4')).replace('/tmp/talk.mp4', out);
      const r = await run('sh', ['-c', cmd], { env, cwd: ROOT, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
      results.push(r.stdout.toString());
    }
    assert.equal(results[0].trim(), 'talk.mp4');
    assert.match(results[1], /-r--r--r-- .* 3145733 .* talk\.mp4/);
    assert.equal(sha256(await fs.readFile(out)), sha256(content));
    assert.match(results[3], /talk\.mp4\s*│\s*3\.0 MiB\s*│\s*100%/);

    const stop = await run('sh', ['-c', 'npx fsctl stop'], { env, cwd: ROOT, timeoutMs: 30_000 });
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await exited, 0);
  });
});
