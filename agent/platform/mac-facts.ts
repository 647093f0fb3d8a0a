import type { Logger } from 'pino';
import { commandOutput as output } from './command-output';
import {
  chooseMacBackend, FSKIT_MODULE, FSKIT_MODULE_ID, KEXT_ID, MACFUSE_BUNDLE, OSXFUSE_BUNDLE, STAGED_KEXT,
  type BackendDecision, type MacBackendSetting, type MacFacts,
} from './mac-backend';
import { thisMachine } from './prerequisites';

const exists = (file: string): Promise<boolean> => thisMachine.exists(file);

/** "15.4.1" → [15, 4]. */
function majorMinor (text: string | null): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(text?.trim() ?? '');
  return m === null ? null : [Number(m[1]), Number(m[2])];
}

/**
 * PluginKit's word on a module: `pluginkit -m -i ID` prints one line per registered version,
 * prefixed by the user's election ("+" on, "-" off, none: not chosen yet).
 */
export function parsePluginkit (out: string | null): { registered: boolean; enabled: boolean | null } {
  const line = (out ?? '').split('\n').find(l => l.includes(FSKIT_MODULE_ID));
  if (line === undefined) return { registered: false, enabled: null };
  const mark = line.trimStart()[0];
  return { registered: true, enabled: mark === '+' ? true : mark === '-' ? false : null };
}

/** What this Mac says about macOS, macFUSE, its FSKit module and its kernel extension (a second or so, at start). */
export async function probeMacFacts (): Promise<MacFacts> {
  const [macos, version, osxfuse, present, pluginkit, kextstat, approved] = await Promise.all([
    output('sw_vers', ['-productVersion']),
    output('plutil', ['-extract', 'CFBundleShortVersionString', 'raw', '-o', '-', `${MACFUSE_BUNDLE}/Contents/Info.plist`]),
    exists(OSXFUSE_BUNDLE),
    exists(FSKIT_MODULE),
    output('pluginkit', ['-m', '-i', FSKIT_MODULE_ID]),
    output('kextstat', ['-l', '-b', KEXT_ID]),
    exists(STAGED_KEXT),
  ]);
  return {
    macos: majorMinor(macos),
    macfuse: version !== null && version.trim() !== '' ? version.trim() : (await exists(MACFUSE_BUNDLE) ? 'unknown' : null),
    osxfuse,
    fskitModule: { present, ...parsePluginkit(pluginkit) },
    kext: { loaded: (kextstat ?? '').includes(KEXT_ID), approved },
  };
}

/** At start on a Mac: which backend to mount with, from what the Mac says; logged with why. */
export async function decideMacBackend (
  setting: MacBackendSetting, mountPoint: string, log: Logger
): Promise<{ decision: BackendDecision; facts: MacFacts }> {
  const facts = await probeMacFacts();
  const decision = chooseMacBackend(setting, facts, mountPoint);
  log.info({ backend: decision.backend, fallback: decision.fallback, facts }, `mounting with ${decision.why}`);
  return { decision, facts };
}
