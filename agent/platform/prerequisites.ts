import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FSKIT_PANE, MACFUSE_BUNDLE, MACFUSE_LIBRARY, OSXFUSE_BUNDLE } from './mac-backend';

/** What the check asks of the machine: put apart so both platforms' answers can be tested anywhere. */
export interface MachineProbe {
  /** True when the path exists (and, given a mode, is accessible that way). */
  exists (path: string, mode?: number): Promise<boolean>;
  /** Loads the FUSE binding; its error message, or null when it loaded. */
  loadBinding (): string | null;
}

/** Where libfuse 2 looks for its mount helper; the agent's start and fsctl doctor check the same. */
export const FUSERMOUNT_PATHS = ['/usr/bin/fusermount', '/bin/fusermount'];

/** fusestream's own folder (a clone, or where npm installed it), where `npm run build:binding` runs. */
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');

/** This machine, as the agent sees it. */
export const thisMachine: MachineProbe = {
  exists: (path, mode) => fs.access(path, mode).then(() => true, () => false),
  loadBinding () {
    try {
      require('fuse-native');
      return null;
    } catch (err) {
      return (err as Error).message.split('\n')[0];
    }
  },
};

/**
 * Checks what the agent needs from the machine before it touches anything, and returns one
 * line per missing piece naming the fix (an empty list when all is there).
 */
export async function checkPrerequisites (platform: NodeJS.Platform, probe: MachineProbe): Promise<string[]> {
  return platform === 'darwin' ? await checkMac(probe) : await checkLinux(probe);
}

async function checkMac (probe: MachineProbe): Promise<string[]> {
  if (!(await probe.exists(MACFUSE_BUNDLE))) {
    const old = await probe.exists(OSXFUSE_BUNDLE) ? ' (only the old osxfuse 3 is installed, which fusestream cannot use)' : '';
    return [
      `macFUSE is not installed${old}: install macFUSE 5 from https://macfuse.github.io (or: brew install --cask macfuse). ` +
      `On macOS 15.4 or later it mounts with FSKit, with no kernel extension: turn macFUSE on in ${FSKIT_PANE}. ` +
      'Earlier macOS needs the kernel extension, which Apple Silicon Macs allow only after Recovery (Reduced Security). ' +
      'fsctl doctor checks the rest; docs/MACOS.md says it step by step',
    ];
  }
  const missing: string[] = [];
  if (!(await probe.exists(MACFUSE_LIBRARY))) {
    missing.push(`macFUSE's library ${MACFUSE_LIBRARY} is missing: reinstall macFUSE (https://macfuse.github.io)`);
  }
  const binding = probe.loadBinding();
  if (binding !== null) {
    missing.push(
      `the FUSE binding could not be loaded (${binding}): build it against macFUSE with npm run build:binding in ${PACKAGE_ROOT} ` +
      '(it needs the command line tools: xcode-select --install)'
    );
  }
  return missing;
}

async function checkLinux (probe: MachineProbe): Promise<string[]> {
  const missing: string[] = [];
  const binding = probe.loadBinding();
  if (binding !== null) {
    missing.push(
      `the FUSE binding could not be loaded (${binding}): install libfuse2 and the tools that build the binding ` +
      `(Debian/Ubuntu: sudo apt-get install libfuse2 libfuse-dev pkg-config python3 make g++), then npm run build:binding in ${PACKAGE_ROOT}`
    );
  }
  if (!(await probe.exists('/dev/fuse', constants.R_OK | constants.W_OK))) {
    missing.push('/dev/fuse is missing or not usable by this user: load the fuse module (sudo modprobe fuse) and check its permissions');
  }
  const found = await Promise.all(FUSERMOUNT_PATHS.map(p => probe.exists(p, constants.X_OK)));
  if (!found.includes(true)) {
    missing.push('fusermount is missing: install fuse3 (Debian/Ubuntu: sudo apt-get install fuse3)');
  }
  return missing;
}
