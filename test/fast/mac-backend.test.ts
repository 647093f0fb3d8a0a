import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseMacBackend, fskitMountFailure, FSKIT_MODULE, MACFUSE_LIBRARY, type MacFacts,
} from '../../agent/platform/mac-backend';
import { parsePluginkit } from '../../agent/platform/mac-facts';
import { mountChecks, type CheckLine, type DoctorProbe } from '../../agent/platform/machine-checks';

/** A Mac as the seed's users have it: Apple Silicon, macOS 15.5, macFUSE 5 with its FSKit module on, the kext never approved. */
const seedMac: MacFacts = {
  macos: [15, 5],
  macfuse: '5.1.3',
  osxfuse: false,
  fskitModule: { present: true, registered: true, enabled: true },
  kext: { loaded: false, approved: false },
};
const VOLUME = '/Volumes/FuseStream';
const mac = (over: Partial<MacFacts>): MacFacts => ({ ...seedMac, ...over });

describe('which macFUSE backend the agent mounts with', () => {
  it('auto: FSKit on macOS 15.4+ with macFUSE 5 and its module, in /Volumes; no kext fallback unless the kext can load', () => {
    const d = chooseMacBackend('auto', seedMac, VOLUME);
    assert.equal(d.backend, 'fskit');
    assert.equal(d.fallback, null, 'a kext never approved is not tried');
    assert.match(d.why, /^FSKit \(macOS 15\.5, macFUSE 5\.1\.3\), no kernel extension needed$/);
    assert.equal(chooseMacBackend('auto', mac({ kext: { loaded: true, approved: false } }), VOLUME).fallback, 'kext');
    assert.equal(chooseMacBackend('auto', mac({ kext: { loaded: false, approved: true } }), VOLUME).fallback, 'kext');
  });

  it('auto: the kernel extension, and why, where FSKit cannot work', () => {
    const cases: Array<[Partial<MacFacts>, string, RegExp]> = [
      [{ macos: [15, 3] }, VOLUME, /since FSKit needs macOS 15\.4 or later, and this is 15\.3$/],
      [{ macos: [14, 7] }, VOLUME, /since FSKit needs macOS 15\.4 or later, and this is 14\.7$/],
      [{ macos: null }, VOLUME, /since FSKit needs macOS 15\.4 or later$/],
      [{ macfuse: '4.8.0' }, VOLUME, /since FSKit needs macFUSE 5, and 4\.8\.0 is installed$/],
      [{ fskitModule: { present: false, registered: false, enabled: null } }, VOLUME, /has no FSKit module at .*\.appex \(reinstall macFUSE\)$/],
      [{}, '/Users/me/FuseStream', /since FSKit mounts only in \/Volumes, and the mount point is \/Users\/me\/FuseStream$/],
      [{ macfuse: null }, VOLUME, /since macFUSE is not installed$/],
    ];
    for (const [over, mountPoint, why] of cases) {
      const d = chooseMacBackend('auto', mac(over), mountPoint);
      assert.equal(d.backend, 'kext', JSON.stringify(over));
      assert.match(d.why, why);
      assert.equal(d.fallback, null);
    }
    assert.equal(chooseMacBackend('auto', { ...seedMac, macos: [26, 1] }, VOLUME).backend, 'fskit', 'macOS 26 is past 15.4');
  });

  it('--mac-backend fskit or kext is taken as given, with no fallback', () => {
    assert.deepEqual(chooseMacBackend('kext', seedMac, VOLUME), { backend: 'kext', why: '--mac-backend kext', fallback: null });
    const forced = chooseMacBackend('fskit', mac({ macos: [14, 0] }), VOLUME);
    assert.deepEqual(forced, { backend: 'fskit', why: '--mac-backend fskit', fallback: null });
  });

  it('says why an FSKit mount failed, the fix (register the module, turn it on: the pane), and what happens next', () => {
    const unregistered = fskitMountFailure(mac({ fskitModule: { present: true, registered: false, enabled: null } }), 'fuse failed', null);
    assert.equal(unregistered,
      `could not mount with macFUSE's FSKit backend (fuse failed): register macFUSE's FSKit module (pluginkit -a ${FSKIT_MODULE}), ` +
      'then turn macFUSE on in System Settings → General → Login Items & Extensions → File System Extensions; ' +
      'the kernel extension is not approved on this Mac (on Apple Silicon that takes Recovery), so it is not tried; fsctl doctor checks the rest');
    const off = fskitMountFailure(mac({ fskitModule: { present: true, registered: true, enabled: false } }), 'EPERM', 'kext');
    assert.match(off, /\(EPERM\): turn macFUSE on in System Settings → General → Login Items & Extensions → File System Extensions; mounting with the kernel extension instead/);
    const on = fskitMountFailure(seedMac, 'File system extension not enabled', null);
    assert.match(on, /is registered and on, yet the mount failed: turn macFUSE off and on again in System Settings .* or log out and in/);
  });

  it('reads PluginKit\'s election of the module: on, off, not chosen, not registered', () => {
    assert.deepEqual(parsePluginkit('+    io.macfuse.app.fsmodule.macfuse(5.1.3)\n'), { registered: true, enabled: true });
    assert.deepEqual(parsePluginkit('-    io.macfuse.app.fsmodule.macfuse(5.1.3)\n'), { registered: true, enabled: false });
    assert.deepEqual(parsePluginkit('     io.macfuse.app.fsmodule.macfuse(5.1.3)\n'), { registered: true, enabled: null });
    assert.deepEqual(parsePluginkit('\n'), { registered: false, enabled: null });
    assert.deepEqual(parsePluginkit(null), { registered: false, enabled: null });
  });
});

describe('fsctl doctor\'s checks of the machine, per platform', () => {
  const S_IFCHR = 0o020000;
  const S_IFREG = 0o100000;
  const FUSE_RDEV = 10 * 256 + 229;
  interface Machine {
    files?: Record<string, { mode: number; uid: number; rdev: number }>;
    writable?: string[];
    outputs?: Record<string, string | null>;
    uid?: number;
    binding?: string | null;
    facts?: MacFacts;
  }
  const probe = (m: Machine): DoctorProbe => ({
    exists: async (p, mode) => {
      const writable = (m.writable ?? []).includes(p);
      return (m.files?.[p] !== undefined || writable) && (mode === undefined || writable);
    },
    loadBinding: () => m.binding ?? null,
    stat: async p => m.files?.[p] ?? null,
    output: async (command) => m.outputs?.[command] ?? null,
    uid: m.uid ?? 1000,
    macFacts: async () => m.facts ?? seedMac,
  });
  const line = (lines: CheckLine[], what: string): CheckLine => {
    const found = lines.find(l => l.what === what);
    assert.ok(found !== undefined, `no "${what}" line in ${JSON.stringify(lines)}`);
    return found;
  };
  const healthyLinux: Machine = {
    files: {
      '/dev/fuse': { mode: S_IFCHR | 0o666, uid: 0, rdev: FUSE_RDEV },
      '/usr/bin/fusermount': { mode: S_IFREG | 0o4755, uid: 0, rdev: 0 },
    },
    writable: ['/dev/fuse'],
    outputs: { ldconfig: '\tlibfuse.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libfuse.so.2\n' },
  };

  it('Linux: all ok for a user on a machine with FUSE set up', async () => {
    const lines = await mountChecks('linux', probe(healthyLinux), '/home/me/FuseStream', 'auto');
    assert.deepEqual(lines.map(l => l.status), lines.map(() => 'ok'), JSON.stringify(lines));
    assert.equal(line(lines, 'mounting').detail, 'allowed for you (through fusermount)');
  });

  it('Linux: each missing piece fails with its fix', async () => {
    const files = healthyLinux.files!;
    const linux = (m: Machine): Promise<CheckLine[]> => mountChecks('linux', probe({ ...healthyLinux, ...m }), '/m', 'auto');
    const plainFusermount = { '/usr/bin/fusermount': { mode: S_IFREG | 0o755, uid: 0, rdev: 0 } };
    const noDevice = await linux({ files: { '/usr/bin/fusermount': files['/usr/bin/fusermount'] } });
    assert.deepEqual(line(noDevice, '/dev/fuse'), {
      status: 'fail',
      what: '/dev/fuse',
      detail: 'missing: load the fuse module (sudo modprobe fuse); in a container, pass --device /dev/fuse',
    });
    assert.equal(line(noDevice, 'mounting').status, 'fail');
    const notFuse = await linux({ files: { ...files, '/dev/fuse': { mode: S_IFCHR | 0o666, uid: 0, rdev: 259 } } });
    assert.match(line(notFuse, '/dev/fuse').detail, /is not the FUSE device \(character device 10:229\)/);
    const noAccess = await linux({ writable: [] });
    assert.match(line(noAccess, '/dev/fuse').detail, /not readable and writable by you/);
    const noSetuid = await linux({ files: { ...files, ...plainFusermount } });
    assert.match(line(noSetuid, 'fusermount').detail, /is not setuid root, so a user cannot mount: reinstall fuse3/);
    const asRoot = await linux({ uid: 0, files: { ...files, ...plainFusermount } });
    assert.equal(line(asRoot, 'fusermount').status, 'ok', 'root needs no setuid fusermount');
    const noFusermount = await linux({ files: { '/dev/fuse': files['/dev/fuse'] } });
    assert.match(line(noFusermount, 'fusermount').detail, /missing: install fuse3/);
    const noLib = await linux({ outputs: { ldconfig: 'libc.so.6\n' }, binding: 'libfuse.so.2: cannot open shared object file' });
    assert.match(line(noLib, 'libfuse 2').detail, /not installed: sudo apt-get install libfuse2/);
    assert.match(line(noLib, 'FUSE binding').detail, /does not load \(libfuse\.so\.2: cannot open shared object file\): npm run build:binding/);
  });

  it('macOS: the seed\'s Mac can mount with FSKit; the kext only warns', async () => {
    const lines = await mountChecks('darwin', probe({ writable: [MACFUSE_LIBRARY] }), VOLUME, 'auto');
    assert.equal(line(lines, 'macOS').detail, '15.5');
    assert.equal(line(lines, 'macFUSE').detail, '5.1.3');
    assert.deepEqual(line(lines, 'FSKit'), { status: 'ok', what: 'FSKit', detail: 'macFUSE\'s module is registered and on' });
    assert.equal(line(lines, 'kernel extension').status, 'warn');
    assert.deepEqual(line(lines, 'mount'), {
      status: 'ok',
      what: 'mount',
      detail: `--mac-backend auto mounts ${VOLUME} with FSKit (macOS 15.5, macFUSE 5.1.3), no kernel extension needed`,
    });
    assert.ok(lines.every(l => l.status !== 'fail'));
  });

  it('macOS: what stops a mount fails with its fix; what does not, warns', async () => {
    const darwin = (facts: Partial<MacFacts>): Promise<CheckLine[]> =>
      mountChecks('darwin', probe({ writable: [MACFUSE_LIBRARY], facts: mac(facts) }), VOLUME, 'auto');
    const unregistered = await darwin({ fskitModule: { present: true, registered: false, enabled: null } });
    assert.match(line(unregistered, 'FSKit').detail, /register macFUSE's FSKit module \(pluginkit -a .*\), then turn macFUSE on in System Settings/);
    assert.equal(line(unregistered, 'mount').status, 'fail');
    const oldMac = await darwin({ macos: [14, 6] });
    assert.match(line(oldMac, 'FSKit').detail, /cannot be used: FSKit needs macOS 15\.4 or later, and this is 14\.6/);
    assert.match(line(oldMac, 'mount').detail, /with the kernel extension, since FSKit needs macOS 15\.4 .*which is not approved: use FSKit/);
    assert.equal(line(oldMac, 'mount').status, 'fail');
    const approvedKext = await darwin({ macos: [14, 6], kext: { loaded: true, approved: true } });
    assert.equal(line(approvedKext, 'mount').status, 'ok');
    const none = await mountChecks('darwin', probe({ facts: mac({ macfuse: null, osxfuse: true }) }), VOLUME, 'auto');
    assert.deepEqual(none.map(l => [l.what, l.status]), [['macOS', 'ok'], ['macFUSE', 'fail']]);
    assert.match(none[1].detail, /not installed \(only the old osxfuse 3 is installed, which fusestream cannot use\): install macFUSE 5/);
    const noLibrary = await mountChecks('darwin', probe({}), VOLUME, 'auto');
    assert.match(line(noLibrary, 'libfuse 2').detail, /libfuse\.2\.dylib is missing: reinstall macFUSE/);
  });
});
