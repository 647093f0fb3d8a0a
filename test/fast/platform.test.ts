import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ConfigError, describeConfig, resolveConfig } from '../../agent/config';
import { keepsFilesSparse } from '../../agent/cache/sparse-check';
import { forceUnmountCommand, prepareMountPoint } from '../../agent/fs/mount';
import { defaultPaths } from '../../agent/paths';
import { MAC_READ_MAX_WAIT_CAP_MS, mountPlan, mountSettingsProblem } from '../../agent/platform/mount-options';
import { validateName } from '../../agent/catalogue/names';
import { checkPrerequisites, type MachineProbe } from '../../agent/platform/prerequisites';
import { MACFUSE_BUNDLE, MACFUSE_LIBRARY } from '../../agent/platform/mac-backend';
import { processNames } from '../../agent/platform/process-names';
import { servicePath, stableNodePath } from '../../ctl/service';
import { useCleanups } from '../helpers/fixtures';

// Everything that differs between Linux and macOS is a function of the platform, checked here
// for both; only the Linux side also runs for real (the rest of the suite).

const option = (options: string[], key: string): string | undefined =>
  options.find(o => o === key || o.startsWith(`${key}=`))?.split('=')[1] ?? (options.includes(key) ? '' : undefined);

describe('mount options per platform', () => {
  const input = { mountPoint: '/Volumes/FuseStream', readMaxWaitMs: 300_000, macBackend: 'kext' as const };

  it('Linux: libfuse 2.9 options, a raised background queue, the configured read deadline', () => {
    const plan = mountPlan('linux', { ...input, mountPoint: '/home/me/FuseStream' });
    assert.deepEqual(
      plan.options,
      ['ro', 'fsname=fusestream', 'subtype=fusestream', 'max_read=131072', 'max_background=64', 'congestion_threshold=48']
    );
    assert.equal(plan.readMaxWaitMs, 300_000);
    assert.equal(plan.readMaxWaitNote, null);
    assert.ok(plan.fuseTimeouts.read > plan.readMaxWaitMs, 'the agent answers a read before fuse-native gives up on it');
    assert.equal(plan.helperCreatesMountPoint, false);
  });

  it('macOS: only options macFUSE knows, no AppleDouble files, iosize, and a daemon_timeout above every answer', () => {
    const plan = mountPlan('darwin', input);
    for (const o of ['ro', 'noappledouble', 'noapplexattr']) assert.ok(plan.options.includes(o), o);
    assert.equal(option(plan.options, 'volname'), 'FuseStream');
    assert.equal(option(plan.options, 'fsname'), 'fusestream');
    assert.equal(option(plan.options, 'iosize'), String(1024 * 1024));
    for (const linuxOnly of ['subtype', 'max_read', 'max_background', 'congestion_threshold', 'auto_cache', 'backend']) {
      assert.equal(option(plan.options, linuxOnly), undefined, `${linuxOnly} is not passed to macFUSE`);
    }
    const daemonTimeoutMs = Number(option(plan.options, 'daemon_timeout')) * 1000;
    assert.ok(daemonTimeoutMs > plan.fuseTimeouts.read && plan.fuseTimeouts.read > plan.readMaxWaitMs);
    assert.ok(daemonTimeoutMs <= 600_000, 'macFUSE takes at most 600 s');
    assert.equal(plan.readMaxWaitMs, 300_000);
    assert.equal(plan.helperCreatesMountPoint, true);
    assert.match(plan.failureHint, /system extension allowed .* docs\/MACOS\.md/);
    assert.match(mountPlan('darwin', { ...input, macBackend: 'fskit' }).failureHint, /try --mac-backend kext/);
  });

  it('macOS: a comma or backslash in the mount folder\'s name is escaped in volname, not taken as another option', () => {
    const plan = mountPlan('darwin', { ...input, mountPoint: '/Volumes/Videos,allow_other\\x' });
    const volname = plan.options.find(o => o.startsWith('volname='));
    assert.equal(volname, 'volname=Videos\\,allow_other\\\\x');
    assert.ok(!plan.options.includes('allow_other'));
  });

  it('an option string the binding would cut (over 1,023 bytes) is refused before mounting, naming the cause', () => {
    const long = `/Volumes/${'v'.repeat(1000)}`;
    assert.match(mountSettingsProblem('darwin', { ...input, mountPoint: long }) ?? '', /over the 1023 .* shorter --mount/);
    assert.equal(mountSettingsProblem('darwin', input), null);
    // On Linux the mount folder is not part of the options.
    assert.equal(mountSettingsProblem('linux', { ...input, mountPoint: `/home/me/${'v'.repeat(1000)}` }), null);
  });

  it('a name with a lone surrogate is refused: it has no UTF-8 form, and two such names would be one', () => {
    assert.throws(() => validateName('clip-\ud800.mp4'), /lone surrogate/);
    assert.equal(validateName('clip-\ud83c\udfac.mp4'), 'clip-\ud83c\udfac.mp4');
  });

  it('macOS: a read deadline longer than macFUSE can wait is lowered, and the plan says why', () => {
    const plan = mountPlan('darwin', { ...input, readMaxWaitMs: 900_000 });
    assert.equal(plan.readMaxWaitMs, MAC_READ_MAX_WAIT_CAP_MS);
    assert.equal(Number(option(plan.options, 'daemon_timeout')), 600);
    assert.match(plan.readMaxWaitNote ?? '', /lowered to 540 s on macOS: macFUSE gives up on the whole volume/);
    assert.equal(mountPlan('linux', { ...input, readMaxWaitMs: 900_000 }).readMaxWaitMs, 900_000, 'Linux has no such cap');
  });

  it('macOS: the FSKit backend is asked for by name, and only in /Volumes', () => {
    assert.equal(option(mountPlan('darwin', { ...input, macBackend: 'fskit' }).options, 'backend'), 'fskit');
    const env = { HOME: '/Users/me' };
    assert.throws(
      () => resolveConfig({ 'mac-backend': 'fskit', mount: '/Users/me/Stream' }, env, null, false, 'darwin'),
      (err: unknown) => err instanceof ConfigError && /FSKit backend mounts only in \/Volumes, not at \/Users\/me\/Stream/.test(err.message)
    );
    assert.equal(resolveConfig({ 'mac-backend': 'fskit' }, env, null, false, 'darwin').config.mount, '/Volumes/FuseStream');
    const onLinux = resolveConfig({ 'mac-backend': 'fskit', mount: '/home/me/x' }, { HOME: '/home/me' }, null, false, 'linux');
    assert.equal(onLinux.config.macBackend, 'fskit', 'ignored on Linux');
    assert.throws(() => resolveConfig({ 'mac-backend': 'fuse-t' }, env, null, false, 'darwin'), /--mac-backend must be one of auto, fskit, kext/);
    // auto (the default) outside /Volumes is not refused: it mounts with the kernel extension there.
    const auto = resolveConfig({ mount: '/Users/me/Stream' }, env, null, false, 'darwin');
    assert.equal(auto.config.macBackend, 'auto');
  });

  it('fsctl config says when macOS lowers the read deadline', () => {
    const resolved = resolveConfig({ 'read-max-wait': '900' }, { HOME: '/Users/me' }, null, false, 'darwin');
    const line = describeConfig(resolved, 'darwin').find(l => l.key === 'read-max-wait')!;
    assert.equal(line.text, '900');
    assert.match(line.note ?? '', /lowered to 540 s on macOS/);
    assert.equal(describeConfig(resolved, 'linux').find(l => l.key === 'read-max-wait')!.note, null);
  });
});

describe('mount point per platform', () => {
  const cleanup = useCleanups();
  const log = pino({ level: 'silent' });

  it('macOS leaves a missing mount point to macFUSE\'s helper; Linux creates it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-mnt-'));
    cleanup(() => fs.rm(dir, { recursive: true, force: true }));
    await prepareMountPoint(path.join(dir, 'mac'), 'darwin', true, log);
    await assert.rejects(fs.stat(path.join(dir, 'mac')), { code: 'ENOENT' });
    await prepareMountPoint(path.join(dir, 'linux'), 'linux', false, log);
    assert.ok((await fs.stat(path.join(dir, 'linux'))).isDirectory());
    await fs.writeFile(path.join(dir, 'linux', 'x'), '');
    await assert.rejects(prepareMountPoint(path.join(dir, 'linux'), 'darwin', true, log), /is not empty/);
  });

  it('a stale mount is detached with diskutil on macOS and fusermount on Linux', () => {
    assert.deepEqual(forceUnmountCommand('darwin', '/Volumes/FuseStream'), ['diskutil', ['unmount', 'force', '/Volumes/FuseStream']]);
    assert.deepEqual(forceUnmountCommand('linux', '/home/me/FuseStream'), ['fusermount', ['-uz', '/home/me/FuseStream']]);
  });
});

describe('socket path per platform', () => {
  it('falls back to a short path when a long home folder would pass the platform\'s limit', () => {
    const uid = process.getuid?.() ?? 0;
    assert.equal(defaultPaths({ HOME: '/Users/me' }, 'darwin').socket, '/Users/me/Library/Application Support/fusestream/agent.sock');
    const longHome = `/Users/${'a'.repeat(60)}`; // 110 bytes with the rest: over macOS's 103
    assert.equal(defaultPaths({ HOME: longHome }, 'darwin').socket, `/tmp/fusestream-${uid}/agent.sock`);
    assert.equal(defaultPaths({ HOME: longHome }, 'linux').socket, `${longHome}/.local/state/fusestream/agent.sock`, 'Linux allows 107');
    const longer = `/home/${'a'.repeat(80)}`;
    assert.equal(defaultPaths({ HOME: longer }, 'linux').socket, `/tmp/fusestream-${uid}/agent.sock`);
  });

  it('refuses a --socket too long for the platform, naming the limit', () => {
    const socket = `/Users/me/${'s'.repeat(100)}.sock`;
    assert.throws(() => resolveConfig({ socket }, { HOME: '/Users/me' }, null, false, 'darwin'), /at most 103 here/);
    assert.equal(resolveConfig({ socket: `/x/${'s'.repeat(90)}` }, { HOME: '/home/me' }, null, false, 'linux').config.socket.length, 93);
  });
});

describe('prerequisites per platform', () => {
  const probe = (present: string[], bindingError: string | null = null): MachineProbe => ({
    exists: async p => present.includes(p),
    loadBinding: () => bindingError,
  });

  it('macOS: says how to install macFUSE and allow it, for the kext and for FSKit', async () => {
    const [none] = await checkPrerequisites('darwin', probe([]));
    assert.match(none, /^macFUSE is not installed: install macFUSE 5 from https:\/\/macfuse\.github\.io/);
    assert.match(none, /mounts with FSKit, with no kernel extension: turn macFUSE on in System Settings → General → Login Items & Extensions/);
    assert.match(none, /Reduced Security/);
    const [old] = await checkPrerequisites('darwin', probe(['/Library/Filesystems/osxfuse.fs']));
    assert.match(old, /only the old osxfuse 3 is installed/);
    assert.deepEqual(await checkPrerequisites('darwin', probe([MACFUSE_BUNDLE, MACFUSE_LIBRARY])), []);
    const [lib, binding] = await checkPrerequisites('darwin', probe([MACFUSE_BUNDLE], 'Cannot find module build/Release/fuse.node'));
    assert.match(lib, /libfuse\.2\.dylib is missing: reinstall macFUSE/);
    assert.match(binding, /Cannot find module .* npm run build:binding in \/.* xcode-select --install/);
  });

  it('Linux: the binding, /dev/fuse and fusermount, each with its fix', async () => {
    assert.deepEqual(await checkPrerequisites('linux', probe(['/dev/fuse', '/usr/bin/fusermount'])), []);
    const missing = await checkPrerequisites('linux', probe([], 'libfuse.so.2: cannot open shared object file'));
    assert.equal(missing.length, 3);
    assert.match(missing[0], /libfuse\.so\.2.*apt-get install libfuse2 libfuse-dev.*npm run build:binding in \//);
    assert.match(missing[1], /modprobe fuse/);
    assert.match(missing[2], /install fuse3/);
  });
});

describe('reader names per platform', () => {
  it('names a process from /proc (Linux) and from ps (macOS\'s way, which Linux\'s ps also answers)', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      for (const platform of ['linux', 'darwin'] as const) {
        const names = await processNames(platform, [child.pid!, 999_999_999]);
        assert.equal(names.get(child.pid!), 'sleep', platform);
        assert.equal(names.has(999_999_999), false, `${platform}: a process that is gone is left out`);
      }
    } finally {
      child.kill();
    }
  });
});

describe('service file per platform', () => {
  const cleanup = useCleanups();

  it('a LaunchAgent\'s PATH holds /usr/sbin (diskutil); a systemd unit\'s the stable folders', () => {
    assert.deepEqual(
      servicePath('launchd', '/opt/homebrew/bin:/usr/bin').split(':'),
      ['/opt/homebrew/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']
    );
    assert.equal(servicePath('systemd', '/usr/local/bin:/usr/bin:/bin'), '/usr/local/bin:/usr/bin:/bin');
  });

  it('starts node by the path on PATH, not by the versioned path an upgrade deletes', async () => {
    const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'fst-brew-')));
    cleanup(() => fs.rm(dir, { recursive: true, force: true }));
    const cellar = path.join(dir, 'Cellar', 'node', '20.19.0', 'bin', 'node');
    await fs.mkdir(path.dirname(cellar), { recursive: true });
    await fs.writeFile(cellar, '');
    await fs.mkdir(path.join(dir, 'bin'));
    await fs.symlink(cellar, path.join(dir, 'bin', 'node'));
    assert.equal(await stableNodePath(cellar, `/nonexistent:${dir}/bin:/usr/bin`), path.join(dir, 'bin', 'node'));
    assert.equal(await stableNodePath(cellar, '/nonexistent'), cellar, 'no node on PATH is this one: its own path');
  });
});

describe('sparse files in the cache folder', () => {
  const cleanup = useCleanups();

  it('finds that this machine\'s temp folder keeps an extended file sparse, and leaves no probe behind', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fst-sparse-'));
    cleanup(() => fs.rm(dir, { recursive: true, force: true }));
    assert.equal(await keepsFilesSparse(dir), true);
    assert.deepEqual(await fs.readdir(dir), []);
  });
});
