import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { childEnv, run } from '../helpers/agent';
import { LocalRegistry } from '../helpers/local-registry';
import { sha256, TestOrigin } from '../../tools/test-origin';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const EXAMPLE_URL = 'https://example.com/videos/talk.mp4';
type Cleanup = (fn: () => Promise<void>) => void;

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

/** The README's commands: the one that starts the agent, the test command, and what a user types next. */
async function readmeCommands (): Promise<{ start: string; usage: string[] }> {
  const lines = await quickStartLines();
  const start = lines.find(l => l.endsWith('fusestream-agent'));
  const test = lines.find(l => l.endsWith('npm test'));
  assert.equal(start, 'npm ci && npm link && fusestream-agent');
  assert.equal(test, 'npm ci && npm test');
  const ci = await fs.readFile(path.join(ROOT, '.ci', 'run'), 'utf8');
  assert.equal(ci.trim().split('\n').pop(), test, '.ci/run ends with exactly the README\'s test command');
  const usage = lines.filter(l => l !== start && l !== test && !l.startsWith('sudo '));
  assert.deepEqual(
    usage.map(l => l.split(' ').slice(0, 2).join(' ')),
    ['fsctl add', 'ls -l', 'cat ~/FuseStream/talk.mp4', 'fsctl ls']
  );
  return { start, usage };
}

/** When the binary and its stamp were last written: a rebuild changes both. */
async function bindingWrittenAt (fuseNative: string): Promise<string> {
  const files = ['build/Release/fuse.node', 'build/fusestream-stamp.json'];
  const times = await Promise.all(files.map(f => fs.stat(path.join(fuseNative, f), { bigint: true })));
  return times.map(s => s.mtimeNs).join(' ');
}

/**
 * Starts the agent with `start` (a shell line) in a fresh HOME, runs the README's usage lines
 * against an origin serving its example file, and stops it with `fsctl stop`.
 */
async function runQuickStart (cleanup: Cleanup, home: string, env: NodeJS.ProcessEnv, start: string, usage: string[]): Promise<void> {
  const origin = await TestOrigin.start();
  cleanup(() => origin.close());
  const content = origin.add('videos/talk.mp4', 3 * 1024 * 1024 + 5);
  const out = path.join(home, 'copy-of-talk.mp4');

  const agent = spawn('sh', ['-c', start], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  // Taken now: the agent may be gone before anything later starts listening for its exit.
  const exited = once(agent, 'exit').then(([code]) => code as number | null);
  let stderr = '';
  agent.stderr.setEncoding('utf8');
  const ready = new Promise<void>((resolve, reject) => {
    agent.stderr.on('data', (s: string) => { stderr += s; if (/"msg":"ready"/.test(stderr)) resolve(); });
    agent.once('exit', code => reject(new Error(`${start} exited with ${code}: ${stderr}`)));
  });
  cleanup(async () => {
    if (agent.exitCode === null && agent.signalCode === null) {
      process.kill(-agent.pid!, 'SIGTERM');
      await exited;
    }
    await run('fusermount', ['-uz', path.join(home, 'FuseStream')]);
  });
  await ready;

  const results: string[] = [];
  for (const line of usage) {
    const cmd = line.replace(EXAMPLE_URL, origin.url('videos/talk.mp4')).replace('/tmp/talk.mp4', out);
    const r = await run('sh', ['-c', cmd], { env, cwd: home, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    results.push(r.stdout.toString());
  }
  assert.equal(results[0].trim(), 'talk.mp4');
  assert.match(results[1], /-r--r--r-- .* 3145733 .* talk\.mp4/);
  assert.equal(sha256(await fs.readFile(out)), sha256(content));
  assert.match(results[3], /talk\.mp4\s*│\s*3\.0 MiB\s*│\s*100%/);

  const stop = await run('sh', ['-c', 'fsctl stop'], { env, cwd: home, timeoutMs: 30_000 });
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(await exited, 0);
}

/** A fresh HOME and npm prefix, whose bin folder comes first on PATH. */
async function freshHomeAndPrefix (cleanup: Cleanup): Promise<{ home: string; prefix: string; env: NodeJS.ProcessEnv }> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-qs-'));
  cleanup(() => fs.rm(home, { recursive: true, force: true }));
  const prefix = path.join(home, 'npm-prefix');
  const env = childEnv({
    HOME: home,
    NO_COLOR: '1',
    npm_config_prefix: prefix,
    npm_config_update_notifier: 'false',
    PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`,
  });
  return { home, prefix, env };
}

describe('the README quick start, as written, in a fresh HOME', () => {
  const cleanup = useCleanups();

  it('puts fusestream-agent and fsctl on PATH with npm link, and runs them without rebuilding anything', async () => {
    const { start, usage } = await readmeCommands();
    const { home, prefix, env } = await freshHomeAndPrefix(cleanup);
    const fuseNative = path.join(ROOT, 'node_modules', 'fuse-native');
    const builtAt = await bindingWrittenAt(fuseNative);

    // `npm ci` already ran for this suite (it is the first half of the test command); the rest runs as written.
    await runQuickStart(cleanup, home, env, start.replace(/^npm ci && /, ''), usage);

    assert.equal(await fs.realpath(path.join(prefix, 'bin', 'fsctl')), path.join(ROOT, 'dist', 'ctl', 'main.js'));
    assert.equal(await bindingWrittenAt(fuseNative), builtAt, 'npm link, the agent and fsctl left the FUSE binding as npm ci built it');
  });

  it('installs from the tarball npm pack makes, with npm install -g, and runs the quick start with the installed commands', async () => {
    const { usage } = await readmeCommands();
    const { home, prefix, env } = await freshHomeAndPrefix(cleanup);
    const packs = path.join(home, 'packs');
    await fs.mkdir(packs);
    const packed = await run('npm', ['pack', '--json', '--pack-destination', packs], { cwd: ROOT, timeoutMs: 120_000 });
    assert.equal(packed.code, 0, packed.stderr);
    const [{ filename }] = JSON.parse(packed.stdout.toString()) as Array<{ filename: string }>;

    // The install's only network is 127.0.0.1: a registry serving the lockfile's packages out of
    // npm's cache, and better-sqlite3's prebuilt binary from a folder, as a mirror would.
    const registry = await LocalRegistry.start(path.join(ROOT, 'npm-shrinkwrap.json'), {});
    cleanup(() => registry.close());
    const prebuilds = await betterSqlitePrebuild(home);
    const installed = await run('npm', ['install', '-g', '--no-audit', '--no-fund', path.join(packs, filename)], {
      cwd: home,
      timeoutMs: 300_000,
      env: {
        ...env,
        npm_config_registry: registry.url,
        npm_config_cache: path.join(home, 'npm-cache'),
        npm_config_better_sqlite3_local_prebuilds: prebuilds,
      },
    });
    assert.equal(installed.code, 0, installed.stderr);

    const pkg = path.join(prefix, 'lib', 'node_modules', 'fusestream');
    assert.equal(await fs.realpath(path.join(prefix, 'bin', 'fusestream-agent')), path.join(pkg, 'dist', 'agent', 'main.js'));
    const fuseNative = path.join(pkg, 'node_modules', 'fuse-native');
    const builtAt = await bindingWrittenAt(fuseNative); // the install built it, with the patch and our C

    await runQuickStart(cleanup, home, env, 'fusestream-agent', usage);
    assert.equal(await bindingWrittenAt(fuseNative), builtAt);
  });
});

/** better-sqlite3's binary as its prebuilt download would be, taken from the clone's build. */
async function betterSqlitePrebuild (home: string): Promise<string> {
  const dir = path.join(home, 'prebuilds');
  const stage = path.join(home, 'prebuild-stage');
  await fs.mkdir(path.join(stage, 'build', 'Release'), { recursive: true });
  await fs.mkdir(dir);
  const sqlite = path.join(ROOT, 'node_modules', 'better-sqlite3');
  const binary = path.join('build', 'Release', 'better_sqlite3.node');
  await fs.copyFile(path.join(sqlite, binary), path.join(stage, binary));
  const { version } = JSON.parse(await fs.readFile(path.join(sqlite, 'package.json'), 'utf8')) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const tar = await run('tar', ['-czf', path.join(dir, name), '-C', stage, 'build']);
  assert.equal(tar.code, 0, tar.stderr);
  return dir;
}
