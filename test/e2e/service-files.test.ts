import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useCleanups } from '../helpers/fixtures';
import { AGENT_BIN, FSCTL_BIN, run } from '../helpers/agent';

describe('service files: fsctl service', () => {
  const cleanup = useCleanups();

  async function freshHome (): Promise<NodeJS.ProcessEnv> {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-home-'));
    cleanup(() => fs.rm(home, { recursive: true, force: true }));
    return { HOME: home, XDG_CONFIG_HOME: undefined, XDG_STATE_HOME: undefined, XDG_CACHE_HOME: undefined, XDG_RUNTIME_DIR: undefined };
  }

  const fsctl = (env: NodeJS.ProcessEnv, args: string[]) => run(
    process.execPath,
    [FSCTL_BIN, '--socket', '/nonexistent/agent.sock', ...args],
    { env }
  );

  it('renders a systemd user unit for this machine that systemd-analyze accepts', async t => {
    const env = await freshHome();
    const r = await fsctl(env, ['service', 'install', '--dry-run', '--kind', 'systemd']);
    assert.equal(r.code, 0, r.stderr);
    const unit = r.stdout.toString();
    assert.match(unit, new RegExp(`^ExecStart=${process.execPath} --single-threaded-gc ${AGENT_BIN.replace('dist/test/../', '')}$`, 'm'));
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^RestartPreventExitStatus=78$/m);
    assert.match(unit, new RegExp(`^ExecStartPre=-\\S*fusermount -uz ${env.HOME}/FuseStream$`, 'm'));
    assert.doesNotMatch(unit, /\{\{[A-Z_]+\}\}/, 'every field is filled in');
    const analyze = await run('sh', ['-c', 'command -v systemd-analyze']);
    if (analyze.code !== 0) return t.skip('systemd-analyze is not installed here (apt-get install systemd to run this check)');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-unit-'));
    cleanup(() => fs.rm(dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(dir, 'fusestream.service'), unit);
    // --user needs a running user manager, which CI lacks; system mode checks syntax, directives and executables.
    const verify = await run('systemd-analyze', ['verify', path.join(dir, 'fusestream.service')]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warnings');
  });

  it('writes only stable folders into the service\'s PATH when run through npx', async () => {
    const env = await freshHome();
    const npxPath = [`${env.HOME}/.npm/_npx/4a1b/node_modules/.bin`, `${env.HOME}/node_modules/.bin`, process.env.PATH].join(':');
    const r = await fsctl({ ...env, PATH: npxPath }, ['service', 'install', '--dry-run', '--kind', 'systemd']);
    assert.equal(r.code, 0, r.stderr);
    const line = /^Environment=PATH=(.*)$/m.exec(r.stdout.toString())?.[1] ?? '';
    assert.doesNotMatch(line, /node_modules|_npx/);
    assert.ok(line.split(':').includes('/usr/bin'), line);
  });

  it('renders a LaunchAgent plist: valid XML with the right keys and types', async () => {
    const env = await freshHome();
    const r = await fsctl(env, ['service', 'install', '--dry-run', '--kind', 'launchd']);
    assert.equal(r.code, 0, r.stderr);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-plist-'));
    cleanup(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'agent.plist');
    await fs.writeFile(file, r.stdout);
    // Python's plistlib is a strict plist parser, and python3 is on every machine this runs on.
    const parsed = await run('python3', ['-c', `
import json, plistlib, sys
with open(sys.argv[1], 'rb') as f: p = plistlib.load(f)
print(json.dumps({k: [type(v).__name__, v] for k, v in p.items()}))`, file]);
    assert.equal(parsed.code, 0, parsed.stderr);
    const p = JSON.parse(parsed.stdout.toString()) as Record<string, [string, unknown]>;
    assert.deepEqual(p.Label, ['str', 'com.fusestream.agent']);
    assert.equal(p.ProgramArguments[0], 'list');
    assert.deepEqual((p.ProgramArguments[1] as string[])[0], process.execPath);
    assert.equal((p.ProgramArguments[1] as string[])[1], '--single-threaded-gc');
    assert.match((p.ProgramArguments[1] as string[])[2], /\/dist\/agent\/main\.js$/);
    assert.deepEqual(p.RunAtLoad, ['bool', true]);
    assert.deepEqual(p.KeepAlive, ['dict', { SuccessfulExit: false }]);
    assert.equal(p.EnvironmentVariables[0], 'dict');
    assert.match(String(p.StandardErrorPath[1]), new RegExp(`^${env.HOME}/Library/Logs/fusestream/`));
    assert.deepEqual(p.ThrottleInterval, ['int', 10]);
    assert.deepEqual(p.ProcessType, ['str', 'Interactive'], 'not throttled as a background process');
    const env2 = p.EnvironmentVariables[1] as Record<string, string>;
    assert.ok(env2.PATH.split(':').includes('/usr/sbin'), `diskutil is on the PATH: ${env2.PATH}`);
  });

  it('carries the installing shell\'s proxies and extra CAs into both files, says which, and hides credentials', async () => {
    const env: NodeJS.ProcessEnv = {
      ...await freshHome(),
      HTTPS_PROXY: 'http://me:s3cr%t"x@proxy.example:3128',
      no_proxy: 'localhost,.internal',
      NODE_EXTRA_CA_CERTS: '/etc/ssl/company-ca.pem',
    };
    const unitRun = await fsctl(env, ['service', 'install', '--files-only', '--kind', 'systemd']);
    assert.equal(unitRun.code, 0, unitRun.stderr);
    assert.match(unitRun.stdout.toString(), new RegExp('it passes on, from this shell: HTTPS_PROXY=http://me:\\*\\*\\*@proxy\\.example:3128/, ' +
      'no_proxy=localhost,\\.internal, NODE_EXTRA_CA_CERTS=/etc/ssl/company-ca\\.pem \\(the file is readable by you only'));
    assert.ok(!unitRun.stdout.toString().includes('s3cr'), 'the password is not printed');
    const unitFile = path.join(env.HOME!, '.config/systemd/user/fusestream.service');
    assert.equal((await fs.stat(unitFile)).mode & 0o777, 0o600);
    const unit = await fs.readFile(unitFile, 'utf8');
    // systemd's own quoting: the quote escaped, % doubled (a specifier otherwise).
    assert.match(unit, /^Environment="HTTPS_PROXY=http:\/\/me:s3cr%%t\\"x@proxy\.example:3128"$/m);
    assert.match(unit, /^Environment="no_proxy=localhost,\.internal"$/m);
    assert.match(unit, /^Environment="NODE_EXTRA_CA_CERTS=\/etc\/ssl\/company-ca\.pem"$/m);
    // Installed again with a proxy that holds no credentials (host:port, as curl takes it): readable as usual again.
    const plain = await fsctl({ ...env, HTTPS_PROXY: 'proxy.example:3128' }, ['service', 'install', '--files-only', '--kind', 'systemd']);
    assert.match(plain.stdout.toString(), /it passes on, from this shell: HTTPS_PROXY=http:\/\/proxy\.example:3128\/, /);
    assert.doesNotMatch(plain.stdout.toString(), /readable by you only/);
    assert.equal((await fs.stat(unitFile)).mode & 0o777, 0o644);
    if ((await run('sh', ['-c', 'command -v systemd-analyze'])).code === 0) {
      const verify = await run('systemd-analyze', ['verify', unitFile]);
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(verify.stderr.trim(), '', 'no warnings about the Environment= lines');
    }

    const plistRun = await fsctl(env, ['service', 'install', '--dry-run', '--kind', 'launchd']);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-plist-'));
    cleanup(() => fs.rm(dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(dir, 'agent.plist'), plistRun.stdout);
    const parsed = await run('python3', ['-c', `
import json, plistlib, sys
with open(sys.argv[1], 'rb') as f: print(json.dumps(plistlib.load(f)['EnvironmentVariables']))`, path.join(dir, 'agent.plist')]);
    assert.equal(parsed.code, 0, parsed.stderr);
    const vars = JSON.parse(parsed.stdout.toString()) as Record<string, string>;
    assert.equal(vars.HTTPS_PROXY, env.HTTPS_PROXY);
    assert.equal(vars.no_proxy, env.no_proxy);
    assert.equal(vars.NODE_EXTRA_CA_CERTS, env.NODE_EXTRA_CA_CERTS);
  });

  const serviceFiles = [
    ['systemd', '.config/systemd/user/fusestream.service'],
    ['launchd', 'Library/LaunchAgents/com.fusestream.agent.plist'],
  ] as const;
  for (const [kind, where] of serviceFiles) {
    it(`installs and uninstalls the ${kind} file into a temporary HOME`, async () => {
      const env = await freshHome();
      const target = path.join(env.HOME!, where);
      const inst = await fsctl(env, ['service', 'install', '--files-only', '--kind', kind]);
      assert.equal(inst.code, 0, inst.stderr);
      assert.match(inst.stdout.toString(), new RegExp(`wrote ${target}`));
      assert.ok((await fs.readFile(target, 'utf8')).includes(process.execPath));
      const status = JSON.parse((await fsctl(env, ['--json', 'service', 'status', '--kind', kind])).stdout.toString());
      assert.equal(status.installed, true);
      assert.equal(status.file, target);
      assert.equal(status.agentRunning, false);
      const un = await fsctl(env, ['service', 'uninstall', '--files-only', '--kind', kind]);
      assert.equal(un.code, 0, un.stderr);
      await assert.rejects(fs.stat(target), { code: 'ENOENT' });
    });
  }
});
