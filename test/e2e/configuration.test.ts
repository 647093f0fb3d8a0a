import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { AGENT_BIN, AgentProcess, FSCTL_BIN, makeDirs, run } from '../helpers/agent';
import { isMounted } from '../helpers/mounts';

interface ConfigLine { key: string; value: unknown; source: string }

/** `fsctl config --json` with no agent running: what an agent started now would use. */
async function localConfig (env: NodeJS.ProcessEnv): Promise<Record<string, ConfigLine>> {
  const r = await run(process.execPath, [FSCTL_BIN, '--socket', '/nonexistent/agent.sock', '--json', 'config'], { env });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.toString()) as { agentRunning: boolean; options: ConfigLine[] };
  assert.equal(out.agentRunning, false);
  return Object.fromEntries(out.options.map(o => [o.key, o]));
}

describe('configuration', () => {
  const cleanup = useCleanups();

  it('takes flags over the environment over the config file over defaults, and says where each came from', async () => {
    const dirs = await makeDirs();
    const xdg = path.join(dirs.dir, 'xdg');
    await fs.mkdir(path.join(xdg, 'fusestream'), { recursive: true });
    await fs.writeFile(
      path.join(xdg, 'fusestream', 'config.json'),
      JSON.stringify({ 'read-timeout': 7, 'read-max-wait': 70, 'download-stall': 4, 'cache-max-bytes': '2G' })
    );
    const base = { XDG_CONFIG_HOME: xdg, FUSESTREAM_READ_TIMEOUT: undefined, FUSESTREAM_READ_MAX_WAIT: undefined };

    const fromFile = await localConfig(base);
    assert.deepEqual([fromFile['read-timeout'].value, fromFile['read-timeout'].source], [7, 'config']);
    assert.deepEqual([fromFile['cache-max-bytes'].value, fromFile['cache-max-bytes'].source], [2 * 1024 ** 3, 'config']);
    assert.deepEqual([fromFile['download-stall'].value, fromFile['download-stall'].source], [4, 'config']);
    assert.deepEqual([fromFile['log-level'].value, fromFile['log-level'].source], ['info', 'default']);

    const fromEnv = await localConfig({ ...base, FUSESTREAM_READ_TIMEOUT: '8' });
    assert.deepEqual([fromEnv['read-timeout'].value, fromEnv['read-timeout'].source], [8, 'env']);
    assert.deepEqual([fromEnv['read-max-wait'].value, fromEnv['read-max-wait'].source], [70, 'config']);

    const agent = await AgentProcess.start({ dirs, args: ['--read-timeout', '9'], env: { ...base, FUSESTREAM_READ_TIMEOUT: '8' } });
    cleanup(() => agent.cleanup());
    const live = await agent.rpc<{ configFile: string; options: ConfigLine[] }>('agent.config');
    const byKey = Object.fromEntries(live.options.map(o => [o.key, o]));
    assert.deepEqual([byKey['read-timeout'].value, byKey['read-timeout'].source], [9, 'flag']);
    assert.deepEqual([byKey['read-max-wait'].value, byKey['read-max-wait'].source], [70, 'config']);
    assert.deepEqual([byKey['mount'].value, byKey['mount'].source], [dirs.mount, 'flag']);
    assert.equal(live.configFile, path.join(xdg, 'fusestream', 'config.json'));
    const human = await run(process.execPath, [FSCTL_BIN, '--socket', dirs.socket, 'config']);
    assert.match(human.stdout.toString(), /read-timeout\s*│\s*9\s*│\s*flag\s*│\s*FUSESTREAM_READ_TIMEOUT/);
    // Sizes as a user writes them, not as raw byte counts.
    assert.match(human.stdout.toString(), /cache-max-bytes\s*│\s*2G\s*│\s*config/);
    assert.match(human.stdout.toString(), /fill-files-up-to\s*│\s*1G\s*│\s*default/);
  });

  it('shows the cache quota an agent chose by itself, and why', async () => {
    const agent = await AgentProcess.start({ env: { FUSESTREAM_CACHE_MAX_BYTES: undefined } });
    cleanup(() => agent.cleanup());
    const status = await agent.rpc<{ cache: { maxBytes: number } }>('agent.status');
    const live = await agent.rpc<{ options: Array<ConfigLine & { note: string | null }> }>('agent.config');
    const quota = live.options.find(o => o.key === 'cache-max-bytes')!;
    assert.deepEqual([quota.value, quota.source], [status.cache.maxBytes, 'default']);
    const human = (await run(process.execPath, [FSCTL_BIN, '--socket', agent.dirs.socket, 'config'])).stdout.toString();
    assert.match(human, /cache-max-bytes\s*│\s*\d+.* \(automatic\)\s*│\s*default/);
    assert.match(human, /^cache-max-bytes: automatic: the smaller of 10 GiB and half the cache disk's free space, as it was at the agent's first start/m);
  });

  it('refuses an invalid configuration with one line naming the key, exit 78, and nothing mounted', async () => {
    const dirs = await makeDirs();
    cleanup(async () => {
      await run('fusermount', ['-uz', dirs.mount]); // only if a case wrongly started an agent
      await fs.rm(dirs.dir, { recursive: true, force: true });
    });
    const file = path.join(dirs.dir, 'config.json');
    // The folders come from the same file, so the key under test is the only thing wrong in it.
    const folders = { mount: dirs.mount, 'cache-dir': dirs.cacheDir, 'state-dir': dirs.stateDir, socket: dirs.socket };
    const blocker = path.join(dirs.dir, 'a-file');
    await fs.writeFile(blocker, 'not a folder');
    const cases: Array<{ config?: unknown; raw?: string; env?: NodeJS.ProcessEnv; args?: string[]; message: RegExp }> = [
      { config: { 'read-timout': 5 }, message: /unknown key "read-timout" \(known keys: mount, cache-dir/ },
      { config: { 'read-timeout': -2 }, message: /"read-timeout" in the config file .* must be a number of seconds above 0 \(got -2\)/ },
      { config: { 'read-timeout': '30' }, message: /"read-timeout" in the config file .* must be a number in JSON \(such as 30\), not "30"/ },
      { config: { 'evict-on-close': 'yes' }, message: /"evict-on-close" in the config file .* must be true or false in JSON \(such as true\), not "yes"/ },
      { config: { 'max-connections': [4] }, message: /"max-connections" in the config file .* must be a number in JSON/ },
      { config: { 'cache-max-bytes': true }, message: /"cache-max-bytes" in the config file .* must be a size, as a string or a number of bytes/ },
      { config: { 'cache-dir': 'relative/cache' }, message: /"cache-dir" in the config file .* must be an absolute path, not "relative\/cache"/ },
      { config: { 'log-level': 'loud' }, message: /"log-level" in the config file .* must be one of trace, debug/ },
      { config: { 'cache-max-bytes': '12' }, message: /"cache-max-bytes" in the config file .* must be a size of at least 1 MiB/ },
      { config: { 'state-dir': path.join(blocker, 'state') }, message: /"state-dir" \(.*a-file\/state, from config\) is not a writable folder: ENOTDIR/ },
      // Under /proc, mkdir says ENOENT for good; Node's recursive mkdir retried it forever.
      { config: { 'cache-dir': '/proc/fusestream-test/cache' }, message: /"cache-dir" \(\/proc\/fusestream-test\/cache, from config\) is not a writable folder: ENOENT/ },
      { config: { 'state-dir': '/proc/self/fusestream' }, message: /"state-dir" \(\/proc\/self\/fusestream, from config\) is not a writable folder: ENOENT/ },
      { raw: '{"read-timeout": 5,', message: /config file .* is not valid JSON/ },
      { raw: '[1, 2]', message: /must hold a JSON object of settings/ },
      { env: { FUSESTREAM_READ_TIMEOUT: 'abc' }, message: /FUSESTREAM_READ_TIMEOUT must be a number of seconds above 0/ },
      { env: { FUSESTREAM_CACHE_DIR: 'not/absolute' }, message: /FUSESTREAM_CACHE_DIR must be an absolute path/ },
      { args: ['--read-max-wait', '-3'], message: /--read-max-wait must be a number of seconds above 0/ },
    ];
    for (const c of cases) {
      await fs.writeFile(file, c.raw ?? JSON.stringify({ ...folders, ...(c.config as object | undefined) }));
      const r = await run(
        process.execPath,
        [AGENT_BIN, ...(c.args ?? [])],
        { env: { ...c.env, FUSESTREAM_CONFIG: file }, timeoutMs: 20_000 }
      );
      const lines = r.stderr.trim().split('\n');
      assert.equal(r.code, 78, `${JSON.stringify(c)}: ${r.stderr}`);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^fusestream-agent: invalid configuration: /);
      assert.match(lines[0], c.message);
      assert.equal(await isMounted(dirs.mount), false);
      await fs.rm(file, { force: true });
    }
    // A mount point that cannot be made is found when mounting (exit 1, as for one that is not empty): also one line, at once.
    await fs.writeFile(file, JSON.stringify({ ...folders, mount: '/proc/fusestream-test/mnt' }));
    const r = await run(process.execPath, [AGENT_BIN], { env: { FUSESTREAM_CONFIG: file }, timeoutMs: 20_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^fusestream-agent: cannot start: cannot create the mount point \/proc\/fusestream-test\/mnt: ENOENT.*\n$/);
  });
});
