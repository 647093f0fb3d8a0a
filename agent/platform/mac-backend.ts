import path from 'node:path';
import type { MacBackend } from './mount-options';

/** What `--mac-backend` may say: a backend, or `auto` (the default) to let the agent choose. */
export type MacBackendSetting = 'auto' | MacBackend;
export const MAC_BACKEND_SETTINGS: readonly MacBackendSetting[] = ['auto', 'fskit', 'kext'];

export const MACFUSE_BUNDLE = '/Library/Filesystems/macfuse.fs';
export const OSXFUSE_BUNDLE = '/Library/Filesystems/osxfuse.fs';
export const MACFUSE_LIBRARY = '/usr/local/lib/libfuse.2.dylib';
/** macFUSE 5's FSKit module, as its installer places it. */
export const FSKIT_MODULE_ID = 'io.macfuse.app.fsmodule.macfuse';
export const FSKIT_MODULE = `${MACFUSE_BUNDLE}/Contents/Resources/macfuse.app/Contents/Extensions/${FSKIT_MODULE_ID}.appex`;
/** Where a user turns a file system extension on (macOS 15 and 26). */
export const FSKIT_PANE = 'System Settings → General → Login Items & Extensions → File System Extensions';
/** The kernel extension's bundle id (kextstat), and where macOS keeps a copy of one the user approved. */
export const KEXT_ID = 'io.macfuse.filesystems.macfuse';
export const STAGED_KEXT = `/Library/StagedExtensions${MACFUSE_BUNDLE}`;

/** What a Mac says about what it can mount with; gathered by `probeMacFacts`, passed in so it can be tested anywhere. */
export interface MacFacts {
  /** macOS version as [major, minor] (sw_vers), or null when unknown. */
  macos: [number, number] | null;
  /** macFUSE's version (its bundle's Info.plist), or null when it is not installed. */
  macfuse: string | null;
  /** The old osxfuse 3 is installed (fusestream cannot use it). */
  osxfuse: boolean;
  /** macFUSE's FSKit module: on disk; registered with PluginKit; turned on by the user (null: unknown). */
  fskitModule: { present: boolean; registered: boolean; enabled: boolean | null };
  /** The kernel extension: loaded now; approved once (macOS keeps a staged copy), so it can load. */
  kext: { loaded: boolean; approved: boolean };
}

export interface BackendDecision {
  backend: MacBackend;
  /** Why, in a few words, for the log and `fsctl doctor`. */
  why: string;
  /** What to mount with if this backend's mount fails: kext, when it can work; null otherwise. */
  fallback: MacBackend | null;
}

function versionAtLeast (have: string | [number, number] | null, major: number, minor = 0): boolean {
  if (have === null) return false;
  const [a, b] = typeof have === 'string' ? have.split('.').map(Number) : have;
  return a > major || (a === major && (b ?? 0) >= minor);
}

/** True when the kernel extension can mount: it is loaded, or the user approved it before. */
export function kextCanWork (f: MacFacts): boolean {
  return f.kext.loaded || f.kext.approved;
}

/** Why FSKit cannot be tried on this Mac, or null when it can. */
export function fskitUnavailable (f: MacFacts, mountPoint: string): string | null {
  if (f.macfuse === null) return 'macFUSE is not installed';
  if (!versionAtLeast(f.macos, 15, 4)) {
    return `FSKit needs macOS 15.4 or later${f.macos !== null ? `, and this is ${f.macos.join('.')}` : ''}`;
  }
  if (!versionAtLeast(f.macfuse, 5)) return `FSKit needs macFUSE 5, and ${f.macfuse} is installed`;
  if (!f.fskitModule.present) return `macFUSE ${f.macfuse} has no FSKit module at ${FSKIT_MODULE} (reinstall macFUSE)`;
  if (path.dirname(mountPoint) !== '/Volumes') return `FSKit mounts only in /Volumes, and the mount point is ${mountPoint}`;
  return null;
}

/**
 * The backend to mount with. `auto` takes FSKit where it can work (macOS 15.4+, macFUSE 5
 * with its FSKit module, a mount point in /Volumes): no kernel extension, so no Recovery.
 * Otherwise the kernel extension. If an FSKit mount fails, the kernel extension is tried
 * only when it can work (loaded or approved), never to meet the same wall silently.
 */
export function chooseMacBackend (setting: MacBackendSetting, f: MacFacts, mountPoint: string): BackendDecision {
  if (setting !== 'auto') return { backend: setting, why: `--mac-backend ${setting}`, fallback: null };
  const blocked = fskitUnavailable(f, mountPoint);
  if (blocked !== null) return { backend: 'kext', why: `the kernel extension, since ${blocked}`, fallback: null };
  return {
    backend: 'fskit',
    why: `FSKit (macOS ${f.macos?.join('.') ?? '?'}, macFUSE ${f.macfuse ?? '?'}), no kernel extension needed`,
    fallback: kextCanWork(f) ? 'kext' : null,
  };
}

/** What the user must do for macFUSE's FSKit module to mount, or null when nothing is known to be missing. */
export function fskitModuleFix (f: MacFacts): string | null {
  if (!f.fskitModule.registered) {
    return `register macFUSE's FSKit module (pluginkit -a ${FSKIT_MODULE}), then turn macFUSE on in ${FSKIT_PANE}`;
  }
  if (f.fskitModule.enabled === false) return `turn macFUSE on in ${FSKIT_PANE}`;
  return null;
}

/**
 * One line for an FSKit mount that failed: why (as far as the Mac says), the fix, and what
 * happens next (the kernel extension is tried, or not and why).
 */
export function fskitMountFailure (f: MacFacts, error: string, fallback: MacBackend | null): string {
  const fix = fskitModuleFix(f) ??
    `macFUSE's FSKit module is registered and on, yet the mount failed: turn macFUSE off and on again in ${FSKIT_PANE}, ` +
    'or log out and in (a known macFUSE issue), then start the agent again';
  const next = fallback === 'kext'
    ? 'mounting with the kernel extension instead, which is loaded or approved on this Mac'
    : 'the kernel extension is not approved on this Mac (on Apple Silicon that takes Recovery), so it is not tried; ' +
      'fsctl doctor checks the rest';
  return `could not mount with macFUSE's FSKit backend (${error}): ${fix}; ${next}`;
}
