import path from 'node:path';
import type { DefaultPaths } from './paths';
import { parseProxyUrl, redactProxy } from './origin/proxy-settings';
import { parseRate, rateText } from './store/bandwidth-limiter';
import { MAC_BACKEND_SETTINGS, type MacBackendSetting } from './platform/mac-backend';

// Every setting of the agent, once: its flag and config key, how its value is read and checked
// from each source, its default, and how it is shown. config.ts merges the sources with these.

/** The agent's settings, after flags, environment, config file and defaults are merged. */
export interface AgentConfig {
  mount: string;
  cacheDir: string;
  stateDir: string;
  socket: string;
  /** A waiting read fails once its download has received nothing for this long. */
  readTimeoutMs: number;
  /** A waiting read fails after this long, however its download moves. */
  readMaxWaitMs: number;
  /** A download attempt whose body goes quiet this long is dropped and retried. */
  downloadStallMs: number;
  logLevel: string;
  /** Hard limit on cached bytes; null: 10 GiB or half the free space at first start, whichever is smaller. */
  cacheMaxBytes: number | null;
  /** Drop a file's cached bytes when its last handle closes. */
  evictOnClose: boolean;
  /** Continue downloads that were running when the agent stopped, without waiting for a reader. */
  resumeDownloads: boolean;
  /** Keep the machine from sleeping while any file downloads. */
  inhibitSleep: boolean;
  /** Origin connections across all files. */
  maxConnections: number;
  /** Origin connections one file may use at once. */
  maxConnectionsPerFile: number;
  /** Files up to this size are downloaded whole in the background once opened; larger ones as reads ask. */
  fillFilesUpTo: number;
  /** macOS: mount with macFUSE's kernel extension, with FSKit, or whichever can work here (auto). */
  macBackend: MacBackendSetting;
  /** PEM certificate authorities trusted besides Node's bundled ones. */
  caFile: string | null;
  /** Proxy of every origin connection, overriding the environment's HTTPS_PROXY and friends. */
  proxy: string | null;
  /** Serve the dashboard on 127.0.0.1. */
  ui: boolean;
  /** The dashboard's port; 0: one the system picks. */
  uiPort: number;
  /** Cap on every download together, bytes per second; null: none. */
  bwlimit: number | null;
  /** Cap on downloads no program waits on (fills, prefetch, resumed downloads), bytes per second; null: none. */
  backgroundBwlimit: number | null;
}

/** Where a value came from, in order of precedence. */
export type Source = 'flag' | 'env' | 'config' | 'default';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export type Value = string | number | boolean | null;

export interface Spec {
  /** Flag and config-file key, e.g. "read-timeout". */
  name: string;
  attr: keyof AgentConfig;
  help: string;
  /** `<arg>` for options that take one; none for switches. */
  arg?: string;
  /** For switches that default to on: the flag is --no-<name>. */
  negatable?: boolean;
  /** Turns a flag, environment or config value into the setting; throws a message without the key. */
  parse: (raw: unknown, from: Source, env: NodeJS.ProcessEnv) => Value;
  defaultValue: (d: DefaultPaths) => Value;
  /** How the default reads in help and `fsctl config`. */
  describeDefault?: string;
  /** The setting as a user writes it (seconds rather than the milliseconds kept inside). */
  show?: (v: Value) => Value;
  /** A byte count: `fsctl config` writes it as a size (1G, 512M). */
  size?: true;
  /** What `fsctl config` says of an unset value (default: automatic). */
  unsetText?: string;
}

function absolutePath (raw: unknown, from: Source, env: NodeJS.ProcessEnv): string {
  if (typeof raw !== 'string' || raw === '') throw new Error('must be a path');
  // A flag is relative to where the command was typed: under `npm start` that is INIT_CWD, not the clone npm runs in.
  if (from === 'flag') return path.resolve(env.INIT_CWD ?? process.cwd(), raw);
  if (!path.isAbsolute(raw)) throw new Error(`must be an absolute path, not "${raw}"`);
  return path.normalize(raw);
}

/** A byte count as a user writes it: in the largest unit that divides it (1G, 512M), else in bytes. */
export function sizeText (n: number): string {
  for (const [unit, power] of [['T', 4], ['G', 3], ['M', 2], ['K', 1]] as const) {
    if (n > 0 && n % 1024 ** power === 0) return `${n / 1024 ** power}${unit}`;
  }
  // Not a round size (half of some free space): the bytes, and what that is in a unit a person reads.
  for (const [unit, power] of [['T', 4], ['G', 3], ['M', 2]] as const) {
    if (n >= 1024 ** power) return `${n} (${(n / 1024 ** power).toFixed(1)}${unit})`;
  }
  return String(n);
}

function ms (v: Value): Value {
  return typeof v === 'number' ? v / 1000 : v;
}

function seconds (raw: unknown): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n <= 0) throw new Error(`must be a number of seconds above 0 (got ${JSON.stringify(raw)})`);
  return n * 1000;
}

/** 20G, 512M, 1.5GiB, 1073741824 -> bytes; at least 1 MiB. */
function byteSize (raw: unknown): number {
  const m = typeof raw === 'number' ? [String(raw), String(raw), ''] : /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(String(raw));
  const n = m === null ? NaN : Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  if (!Number.isFinite(n) || n < 1024 * 1024) {
    throw new Error(`must be a size of at least 1 MiB such as 20G, 512M or 1073741824 (got ${JSON.stringify(raw)})`);
  }
  return Math.floor(n);
}

function count (raw: unknown): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`must be a whole number from 1 to 1024 (got ${JSON.stringify(raw)})`);
  return n;
}

/** A size, where 0 turns the feature off. */
function sizeOrZero (raw: unknown): number {
  return raw === 0 || raw === '0' ? 0 : byteSize(raw);
}

function bool (raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'string' && /^(1|true|yes|on)$/i.test(raw)) return true;
  if (typeof raw === 'string' && /^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`must be true or false (got ${JSON.stringify(raw)})`);
}

function macBackend (raw: unknown): MacBackendSetting {
  const found = MAC_BACKEND_SETTINGS.find(b => b === raw);
  if (found === undefined) throw new Error(`must be one of ${MAC_BACKEND_SETTINGS.join(', ')} (got ${JSON.stringify(raw)})`);
  return found;
}

function port (raw: unknown): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`must be a port from 0 to 65535 (got ${JSON.stringify(raw)})`);
  return n;
}

function level (raw: unknown): string {
  if (typeof raw !== 'string' || !LOG_LEVELS.includes(raw)) {
    throw new Error(`must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(raw)})`);
  }
  return raw;
}

/**
 * The JSON type a config file must give each kind of setting. The environment and flags are
 * text by nature; a config file is typed, so `"read-timeout": "30"` or `"evict-on-close":
 * "yes"` is a mistake worth a clear line, not a guess.
 */
const CONFIG_FILE_TYPES = new Map<Spec['parse'], 'a number' | 'true or false' | 'a string' | 'a size'>([
  [seconds, 'a number'], [count, 'a number'], [port, 'a number'], [bool, 'true or false'],
  [absolutePath, 'a string'], [level, 'a string'], [macBackend, 'a string'],
  [byteSize, 'a size'], [sizeOrZero, 'a size'], [parseProxyUrl, 'a string'], [parseRate, 'a size'],
]);

export function checkConfigFileType (spec: Spec, raw: unknown): void {
  const wanted = CONFIG_FILE_TYPES.get(spec.parse);
  const ok = wanted === 'a number'
    ? typeof raw === 'number'
    : wanted === 'true or false'
      ? typeof raw === 'boolean'
      : wanted === 'a string' ? typeof raw === 'string' : typeof raw === 'string' || typeof raw === 'number';
  if (ok) return;
  const example = wanted === 'a number' ? '30' : wanted === 'true or false' ? 'true' : wanted === 'a size' ? '"20G" or 21474836480' : '"…"';
  throw new Error(`must be ${wanted === 'a size' ? 'a size, as a string or a number of bytes' : wanted} in JSON ` +
    `(such as ${example}), not ${JSON.stringify(raw)}`);
}

/** What the two rate caps share: read and shown as rclone writes a rate (8M), off when unset. */
const RATE_SETTING = {
  arg: '<rate>',
  parse: parseRate,
  defaultValue: () => null,
  unsetText: 'off',
  show: (v: Value) => (typeof v === 'number' ? rateText(v) : v),
} satisfies Partial<Spec>;

/** Every agent option, once: flags, environment variables, config keys, checks and help all come from here. */
export const SPECS: Spec[] = [
  {
    name: 'mount',
    attr: 'mount',
    arg: '<dir>',
    help: 'mount point (created if missing; must be empty)',
    parse: absolutePath,
    defaultValue: d => d.mount,
  },
  {
    name: 'cache-dir',
    attr: 'cacheDir',
    arg: '<dir>',
    help: 'where temp files of downloaded bytes are kept',
    parse: absolutePath,
    defaultValue: d => d.cacheDir,
  },
  {
    name: 'state-dir',
    attr: 'stateDir',
    arg: '<dir>',
    help: 'where the state database and logs are kept',
    parse: absolutePath,
    defaultValue: d => d.stateDir,
  },
  { name: 'socket', attr: 'socket', arg: '<path>', help: 'control socket for fsctl', parse: absolutePath, defaultValue: d => d.socket },
  {
    name: 'read-timeout',
    attr: 'readTimeoutMs',
    arg: '<seconds>',
    help: 'fail a waiting read once its download received nothing for this long',
    parse: seconds,
    defaultValue: () => 20_000,
    describeDefault: '20',
    show: ms,
  },
  {
    name: 'read-max-wait',
    attr: 'readMaxWaitMs',
    arg: '<seconds>',
    help: 'fail a waiting read after this long in any case',
    parse: seconds,
    defaultValue: () => 300_000,
    describeDefault: '300',
    show: ms,
  },
  {
    name: 'download-stall',
    attr: 'downloadStallMs',
    arg: '<seconds>',
    help: 'drop and resume a download connection silent this long',
    parse: seconds,
    defaultValue: () => 10_000,
    describeDefault: '10',
    show: ms,
  },
  {
    name: 'cache-max-bytes',
    attr: 'cacheMaxBytes',
    arg: '<size>',
    help: 'hard limit on cached bytes, e.g. 20G',
    parse: byteSize,
    size: true,
    defaultValue: () => null,
    describeDefault: '10 GiB or half the free space at first start, whichever is smaller',
  },
  {
    name: 'evict-on-close',
    attr: 'evictOnClose',
    help: 'drop a file\'s cached bytes when its last handle closes',
    parse: bool,
    defaultValue: () => false,
  },
  {
    name: 'resume-downloads',
    attr: 'resumeDownloads',
    negatable: true,
    help: 'continue unfinished downloads at start without waiting for a reader',
    parse: bool,
    defaultValue: () => true,
  },
  {
    name: 'inhibit-sleep',
    attr: 'inhibitSleep',
    negatable: true,
    help: 'keep the machine awake while any file downloads (systemd-inhibit on Linux, caffeinate on macOS)',
    parse: bool,
    defaultValue: () => true,
  },
  {
    name: 'max-connections',
    attr: 'maxConnections',
    arg: '<n>',
    help: 'origin connections across all files (reads waiting go first)',
    parse: count,
    defaultValue: () => 32,
  },
  {
    name: 'max-connections-per-file',
    attr: 'maxConnectionsPerFile',
    arg: '<n>',
    help: 'origin connections one file may use at once (seeks far apart each get one)',
    parse: count,
    defaultValue: () => 4,
  },
  {
    name: 'fill-files-up-to',
    attr: 'fillFilesUpTo',
    arg: '<size>',
    help: 'download files up to this size whole once opened; larger ones only as far as reads and read-ahead ask',
    parse: sizeOrZero,
    size: true,
    defaultValue: () => 1024 ** 3,
    describeDefault: '1G',
  },
  {
    name: 'mac-backend',
    attr: 'macBackend',
    arg: '<backend>',
    help: 'macOS: mount with FSKit (fskit: macFUSE 5, macOS 15.4+, in /Volumes, no kernel extension), macFUSE\'s kernel ' +
      'extension (kext), or auto: FSKit where it can work, else the kernel extension',
    parse: macBackend,
    defaultValue: () => 'auto',
  },
  {
    name: 'ca-file',
    attr: 'caFile',
    arg: '<file>',
    help: 'PEM file of certificate authorities to trust besides the bundled ones (a company\'s or a TLS-inspecting proxy\'s)',
    parse: absolutePath,
    defaultValue: () => null,
    describeDefault: 'none',
    unsetText: 'none',
  },
  {
    name: 'proxy',
    attr: 'proxy',
    arg: '<url>',
    help: 'proxy for every origin (http://[user:password@]host:port); default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and ' +
      'NO_PROXY from the environment, as curl reads them',
    parse: parseProxyUrl,
    defaultValue: () => null,
    describeDefault: 'from the environment',
    unsetText: 'from the environment',
    show: v => (typeof v === 'string' ? redactProxy(v) : v),
  },
  {
    name: 'bwlimit',
    attr: 'bwlimit',
    help: 'cap on every download together, as rclone writes it: 512K, 8M, 1.5G (KiB, MiB, GiB per second) or off; ' +
      'fsctl limit changes it while the agent runs',
    ...RATE_SETTING,
  },
  {
    name: 'background-bwlimit',
    attr: 'backgroundBwlimit',
    help: 'cap on downloads no program waits on (whole-file fills, prefetch, resumed downloads): 512K, 8M or off; ' +
      'reads a program waits on always go first',
    ...RATE_SETTING,
  },
  {
    name: 'ui',
    attr: 'ui',
    negatable: true,
    help: 'serve the dashboard on 127.0.0.1 (fsctl ui opens it)',
    parse: bool,
    defaultValue: () => true,
  },
  {
    name: 'ui-port',
    attr: 'uiPort',
    arg: '<port>',
    help: 'the dashboard\'s port on 127.0.0.1 (0: a free one, picked at each start)',
    parse: port,
    defaultValue: () => 0,
  },
  {
    name: 'log-level',
    attr: 'logLevel',
    arg: '<level>',
    help: `log level: ${LOG_LEVELS.join(', ')}`,
    parse: level,
    defaultValue: () => 'info',
  },
];

export function envName (name: string): string {
  return `FUSESTREAM_${name.toUpperCase().replace(/-/g, '_')}`;
}
