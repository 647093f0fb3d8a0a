import { constants } from 'node:fs';
import { FUSERMOUNT_PATHS, type MachineProbe } from './prerequisites';
import {
  chooseMacBackend, fskitModuleFix, fskitUnavailable, kextCanWork, FSKIT_PANE, MACFUSE_LIBRARY, type MacBackendSetting, type MacFacts,
} from './mac-backend';

/** One line of `fsctl doctor`: ok, a warning (a mount can still work), or a failure (it cannot), with the fix. */
export interface CheckLine {
  status: 'ok' | 'warn' | 'fail';
  /** What was checked, in a few words ("/dev/fuse"). */
  what: string;
  /** What was found, and for a warning or failure, what to do. */
  detail: string;
}

/** What `fsctl doctor` asks of the machine beyond the agent's own start check. */
export interface DoctorProbe extends MachineProbe {
  /** A file's mode, owner and device numbers, or null when it is missing. */
  stat (path: string): Promise<{ mode: number; uid: number; rdev: number } | null>;
  /** A command's stdout, or null when it is missing or fails. */
  output (command: string, args: string[]): Promise<string | null>;
  /** This process's user id. */
  uid: number;
  /** macOS only: what the Mac says about macFUSE (mac-facts). */
  macFacts (): Promise<MacFacts>;
}

const ok = (what: string, detail: string): CheckLine => ({ status: 'ok', what, detail });
const warn = (what: string, detail: string): CheckLine => ({ status: 'warn', what, detail });
const fail = (what: string, detail: string): CheckLine => ({ status: 'fail', what, detail });

/** FUSE's character device is 10:229 on Linux (the misc device "fuse"). */
const FUSE_DEVICE = { major: 10, minor: 229 };
const KEXT_OR_FSKIT = 'use FSKit (macFUSE 5, macOS 15.4+, a mount point in /Volumes), or approve it (docs/MACOS.md)';
/** The set-user-id bit (not in Node's fs.constants). */
const S_ISUID = 0o4000;

/** Everything a mount needs from this machine, one line each. */
export async function mountChecks (
  platform: NodeJS.Platform, probe: DoctorProbe, mountPoint: string, backend: MacBackendSetting
): Promise<CheckLine[]> {
  return platform === 'darwin' ? await macChecks(probe, mountPoint, backend) : await linuxChecks(probe);
}

function bindingCheck (probe: MachineProbe, fix: string): CheckLine {
  const error = probe.loadBinding();
  return error === null ? ok('FUSE binding', 'loads') : fail('FUSE binding', `does not load (${error}): ${fix}`);
}

async function linuxChecks (probe: DoctorProbe): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const libfuse = await probe.output('ldconfig', ['-p']);
  lines.push(libfuse === null
    ? warn('libfuse 2', 'ldconfig could not be asked; the binding check below tells whether it loads')
    : /\blibfuse\.so\.2\b/.test(libfuse)
      ? ok('libfuse 2', 'installed')
      : fail('libfuse 2', 'not installed: sudo apt-get install libfuse2 (Debian/Ubuntu), or your distribution\'s fuse2 package'));
  lines.push(bindingCheck(probe, 'npm run build:binding in fusestream\'s folder (it needs libfuse-dev pkg-config python3 make g++)'));

  const dev = await probe.stat('/dev/fuse');
  const isFuse = dev !== null && (dev.mode & constants.S_IFMT) === constants.S_IFCHR &&
    Math.floor(dev.rdev / 256) === FUSE_DEVICE.major && dev.rdev % 256 === FUSE_DEVICE.minor;
  const usable = isFuse && await probe.exists('/dev/fuse', constants.R_OK | constants.W_OK);
  if (dev === null) {
    lines.push(fail('/dev/fuse', 'missing: load the fuse module (sudo modprobe fuse); in a container, pass --device /dev/fuse'));
  } else if (!isFuse) {
    lines.push(fail('/dev/fuse', 'is not the FUSE device (character device 10:229): sudo modprobe fuse, and check what replaced it'));
  } else {
    lines.push(usable
      ? ok('/dev/fuse', 'usable')
      : fail('/dev/fuse', 'not readable and writable by you: add yourself to the group that owns it (often fuse)'));
  }

  let fusermount: { path: string; mode: number; uid: number } | null = null;
  for (const p of FUSERMOUNT_PATHS) {
    const st = await probe.stat(p);
    if (st !== null) { fusermount = { path: p, ...st }; break; }
  }
  const setuidRoot = fusermount !== null && fusermount.uid === 0 && (fusermount.mode & S_ISUID) !== 0;
  if (fusermount === null) {
    lines.push(fail('fusermount', 'missing: install fuse3 (Debian/Ubuntu: sudo apt-get install fuse3)'));
  } else if (setuidRoot || probe.uid === 0) {
    lines.push(ok('fusermount', fusermount.path));
  } else {
    const fix = 'reinstall fuse3 (sudo apt-get install --reinstall fuse3)';
    lines.push(fail('fusermount', `${fusermount.path} is not setuid root, so a user cannot mount: ${fix}`));
  }
  if (!usable) lines.push(fail('mounting', 'not possible until /dev/fuse is usable'));
  else if (probe.uid === 0) lines.push(ok('mounting', 'you are root'));
  else if (setuidRoot) lines.push(ok('mounting', 'allowed for you (through fusermount)'));
  else lines.push(fail('mounting', 'not allowed for you: see the fusermount line'));
  return lines;
}

async function macChecks (probe: DoctorProbe, mountPoint: string, setting: MacBackendSetting): Promise<CheckLine[]> {
  const f = await probe.macFacts();
  const lines: CheckLine[] = [];
  lines.push(f.macos === null ? warn('macOS', 'version unknown (sw_vers did not answer)') : ok('macOS', f.macos.join('.')));
  if (f.macfuse === null) {
    const old = f.osxfuse ? ' (only the old osxfuse 3 is installed, which fusestream cannot use)' : '';
    lines.push(fail('macFUSE', `not installed${old}: install macFUSE 5 from https://macfuse.github.io (or brew install --cask macfuse)`));
    return lines;
  }
  lines.push(ok('macFUSE', f.macfuse));
  if (f.osxfuse) lines.push(warn('osxfuse', 'the old osxfuse 3 is installed too; uninstall it, it can get in macFUSE\'s way'));
  lines.push(await probe.exists(MACFUSE_LIBRARY)
    ? ok('libfuse 2', MACFUSE_LIBRARY)
    : fail('libfuse 2', `${MACFUSE_LIBRARY} is missing: reinstall macFUSE`));
  lines.push(bindingCheck(probe, 'npm run build:binding in fusestream\'s folder (it needs xcode-select --install)'));

  const blocked = fskitUnavailable(f, mountPoint);
  const moduleFix = fskitModuleFix(f);
  lines.push(blocked !== null
    ? warn('FSKit', `cannot be used: ${blocked}`)
    : moduleFix !== null
      ? warn('FSKit', `macFUSE's module is not ready: ${moduleFix}`)
      : ok('FSKit', f.fskitModule.enabled === true ? 'macFUSE\'s module is registered and on' : 'macFUSE\'s module is registered'));
  lines.push(kextCanWork(f)
    ? ok('kernel extension', f.kext.loaded ? 'loaded' : 'approved')
    : warn('kernel extension', 'not approved (only needed without FSKit; on Apple Silicon approving it takes Recovery: docs/MACOS.md)'));

  const decision = chooseMacBackend(setting, f, mountPoint);
  const fskitReady = blocked === null && moduleFix === null;
  const canMount = decision.backend === 'fskit' ? fskitReady || kextCanWork(f) : kextCanWork(f);
  const how = `--mac-backend ${setting} mounts ${mountPoint} with ${decision.why}`;
  lines.push(canMount
    ? ok('mount', how)
    : decision.backend === 'fskit'
      ? fail('mount', `${how}, which is not ready: ${moduleFix ?? `turn macFUSE on in ${FSKIT_PANE}`}`)
      : fail('mount', `${how}, which is not approved: ${KEXT_OR_FSKIT}`));
  return lines;
}
