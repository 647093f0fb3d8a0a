import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AgentProcess, FSCTL_BIN, run } from '../helpers/agent';
import { useCleanups } from '../helpers/fixtures';

interface Check { status: 'ok' | 'warn' | 'fail'; what: string; detail: string }

/** A fresh HOME and XDG folders, so doctor looks at defaults of its own. */
async function freshEnv (cleanup: (fn: () => Promise<void>) => void): Promise<NodeJS.ProcessEnv> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-doctor-'));
  cleanup(() => fs.rm(home, { recursive: true, force: true }));
  return { HOME: home, XDG_RUNTIME_DIR: path.join(home, 'run'), NO_COLOR: '1' };
}

describe('fsctl doctor on this machine (Linux), with no agent and with one', () => {
  const cleanup = useCleanups();

  it('checks every piece a mount needs, one line each, and exits 0 when a mount can work', async () => {
    const env = await freshEnv(cleanup);
    const r = await run(process.execPath, [FSCTL_BIN, 'doctor'], { env, timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stdout.toString() + r.stderr);
    const text = r.stdout.toString();
    for (const what of ['configuration', 'libfuse 2', 'FUSE binding', '/dev/fuse', 'fusermount', 'mounting', 'cache folder', 'state folder',
      'sparse files', 'free space', 'socket', 'agent', 'service']) {
      assert.match(text, new RegExp(`^ok {4}${what.replace('/', '\\/')}: `, 'm'), text);
    }
    assert.match(text, /^ok {4}agent: not running \(start it with fusestream-agent/m);
    assert.match(text, /a mount can work here\n$/);

    const json = JSON.parse((await run(process.execPath, [FSCTL_BIN, '--json', 'doctor'], { env, timeoutMs: 30_000 })).stdout.toString()) as
      { canMount: boolean; checks: Check[] };
    assert.equal(json.canMount, true);
    assert.ok(json.checks.every(c => c.status === 'ok'), JSON.stringify(json.checks));
  });

  it('names the running agent', async () => {
    const agent = await AgentProcess.start();
    cleanup(() => agent.cleanup());
    const r = await run(process.execPath, [FSCTL_BIN, '--socket', agent.dirs.socket, 'doctor'], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stdout.toString() + r.stderr);
    assert.match(r.stdout.toString(), new RegExp(`^ok {4}agent: running, pid \\d+, ${agent.mount} mounted$`, 'm'));
  });

  it('with /dev/fuse missing (a mount namespace with an empty /dev): fails that line and the mount, names the fix, exits 1', async t => {
    const env = await freshEnv(cleanup);
    const inner = `mount -t tmpfs tmpfs /dev && exec ${process.execPath} ${FSCTL_BIN} doctor`;
    // Root makes a mount namespace of its own; a user, inside a user namespace where it maps to root.
    const attempts = [['--mount', '--propagation', 'private'], ['--user', '--map-root-user', '--mount', '--propagation', 'private']];
    let r = null;
    for (const args of attempts) {
      r = await run('unshare', [...args, 'sh', '-c', inner], { env, timeoutMs: 30_000 });
      if (/^(ok|warn|FAIL) /m.test(r.stdout.toString())) break;
      r = null;
    }
    if (r === null) {
      assert.ok(process.env.CI === undefined, 'CI runs as root, where unshare --mount works');
      t.skip('no mount namespace could be made here (unshare needs root or user namespaces)');
      return;
    }
    const text = r.stdout.toString();
    assert.equal(r.code, 1, text + r.stderr);
    assert.match(text, /^FAIL {2}\/dev\/fuse: missing: load the fuse module \(sudo modprobe fuse\); in a container, pass --device \/dev\/fuse$/m);
    assert.match(text, /^FAIL {2}mounting: not possible until \/dev\/fuse is usable$/m);
    assert.match(text, /^ok {4}fusermount: /m, 'the rest is still checked');
    assert.match(text, /a mount cannot work here until the FAIL lines are fixed\n$/);
  });
});
