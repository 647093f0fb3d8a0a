import path from 'node:path';

/** How macFUSE mounts: its kernel extension, or FSKit (macFUSE 5, macOS 15.4+, no kernel extension). */
export type MacBackend = 'kext' | 'fskit';

/**
 * The kernel keeps at most this many read-ahead requests in flight per mount (default 12)
 * and blocks new readers past the congestion threshold (default 9): twelve reads stalled on
 * one file then starve every other file. Raised so stalled reads cannot block healthy ones,
 * and so every waiting read reaches the agent (and its list of waiters).
 */
const MAX_BACKGROUND = 64;
const CONGESTION_THRESHOLD = 48;
/** libfuse 2.9 caps a read request at 128 KiB whatever is asked; ask for exactly that. */
const MAX_READ = 128 * 1024;
/** macFUSE reads in units of `iosize` (a power of two, at most 32 MiB); 1 MiB keeps requests few. */
const MAC_IOSIZE = 1024 * 1024;
/**
 * fuse-native answers ETIMEDOUT on its own when a handler runs longer than its timeout, while
 * the handler goes on (and may later write into a buffer libfuse reused). Its timeout is set
 * this far above the store's own cap, so the store always answers first.
 */
const FUSE_TIMEOUT_MARGIN_MS = 30_000;
/** Metadata answers from memory; anything slower than this is a bug, not a wait. */
const FUSE_OP_TIMEOUT_MS = 30_000;
/**
 * macFUSE marks the whole volume dead (every later call fails with ENXIO) when one request
 * goes unanswered for `daemon_timeout` seconds, at most 600. It is set above fuse-native's
 * own answer, which is above the agent's read deadline; that caps how long a read may wait.
 */
const MAC_DAEMON_TIMEOUT_MAX_S = 600;
/**
 * fuse-native copies the whole option string ("-o…") into 1,024 bytes with strncpy: a longer
 * one would be cut silently, so it is refused instead.
 */
const MAX_OPTION_STRING_BYTES = 1023;
const MAC_DAEMON_TIMEOUT_MARGIN_MS = 30_000;
export const MAC_READ_MAX_WAIT_CAP_MS = MAC_DAEMON_TIMEOUT_MAX_S * 1000 - MAC_DAEMON_TIMEOUT_MARGIN_MS - FUSE_TIMEOUT_MARGIN_MS;

export interface MountPlanInput {
  mountPoint: string;
  /** --read-max-wait as configured. */
  readMaxWaitMs: number;
  /** macOS only. */
  macBackend: MacBackend;
}

export interface MountPlan {
  /** The -o options, as libfuse gets them. */
  options: string[];
  /** The read deadline the platform allows: the configured one, or the cap when it is longer. */
  readMaxWaitMs: number;
  /** Why the read deadline was lowered, or null when it was not. */
  readMaxWaitNote: string | null;
  /** fuse-native's own per-operation timeouts (ms), above the agent's deadlines. */
  fuseTimeouts: { default: number; read: number };
  /** A missing mount point is left to the mount helper (macFUSE's creates it under /Volumes). */
  helperCreatesMountPoint: boolean;
  /** What to check when the mount fails. */
  failureHint: string;
}

/** A problem with the mount settings for this platform, said before anything is touched. */
export function mountSettingsProblem (platform: NodeJS.Platform, input: MountPlanInput): string | null {
  if (platform === 'darwin' && input.macBackend === 'fskit' && path.dirname(input.mountPoint) !== '/Volumes') {
    return `macFUSE's FSKit backend mounts only in /Volumes, not at ${input.mountPoint}: ` +
      'choose --mount /Volumes/<name>, or --mac-backend kext';
  }
  const bytes = Buffer.byteLength(optionString(mountPlan(platform, input).options));
  if (bytes > MAX_OPTION_STRING_BYTES) {
    return `the mount options would be ${bytes} bytes, over the ${MAX_OPTION_STRING_BYTES} the FUSE binding takes ` +
      '(the mount folder\'s name is part of them on macOS): choose a shorter --mount';
  }
  return null;
}

/** The -o argument libfuse gets, as fuse-native builds it from the options. */
function optionString (options: string[]): string {
  return '-o' + options.join(',');
}

/**
 * A value inside a -o option: libfuse splits the option string at commas, and takes a
 * backslash as "the next character as it is" (fuse_opt.c), so both are escaped with one.
 */
function escapeOptionValue (value: string): string {
  return value.replace(/[\\,]/g, c => `\\${c}`);
}

/** Everything the mount needs that differs between Linux (libfuse 2.9) and macOS (macFUSE 4/5). */
export function mountPlan (platform: NodeJS.Platform, input: MountPlanInput): MountPlan {
  if (platform === 'darwin') {
    const readMaxWaitMs = Math.min(input.readMaxWaitMs, MAC_READ_MAX_WAIT_CAP_MS);
    const fuseRead = readMaxWaitMs + FUSE_TIMEOUT_MARGIN_MS;
    const daemonTimeoutS = Math.ceil((fuseRead + MAC_DAEMON_TIMEOUT_MARGIN_MS) / 1000);
    return {
      options: [
        'ro',
        'fsname=fusestream',
        `volname=${escapeOptionValue(path.basename(input.mountPoint))}`,
        // No ._ files or .DS_Store writes attempted, no Finder/Spotlight xattr probes per file.
        'noappledouble',
        'noapplexattr',
        `daemon_timeout=${daemonTimeoutS}`,
        `iosize=${MAC_IOSIZE}`,
        // The page cache is kept or dropped per open by the agent (keep_cache), as on Linux.
        ...(input.macBackend === 'fskit' ? ['backend=fskit'] : []),
      ],
      readMaxWaitMs,
      readMaxWaitNote: readMaxWaitMs < input.readMaxWaitMs
        ? `lowered to ${readMaxWaitMs / 1000} s on macOS: ` +
          `macFUSE gives up on the whole volume when a request waits ${MAC_DAEMON_TIMEOUT_MAX_S} s`
        : null,
      fuseTimeouts: { default: FUSE_OP_TIMEOUT_MS, read: fuseRead },
      helperCreatesMountPoint: true,
      failureHint: mountFailureHint(platform, input.macBackend),
    };
  }
  return {
    options: [
      'ro',
      'fsname=fusestream',
      'subtype=fusestream',
      `max_read=${MAX_READ}`,
      `max_background=${MAX_BACKGROUND}`,
      `congestion_threshold=${CONGESTION_THRESHOLD}`,
    ],
    readMaxWaitMs: input.readMaxWaitMs,
    readMaxWaitNote: null,
    fuseTimeouts: { default: FUSE_OP_TIMEOUT_MS, read: input.readMaxWaitMs + FUSE_TIMEOUT_MARGIN_MS },
    helperCreatesMountPoint: false,
    failureHint: mountFailureHint(platform, input.macBackend),
  };
}

/** What to check when mounting failed: fuse-native says only "fuse failed". */
function mountFailureHint (platform: NodeJS.Platform, backend: MacBackend): string {
  if (platform !== 'darwin') return 'check that /dev/fuse is usable and fusermount is setuid root (README, Troubleshooting)';
  return backend === 'fskit'
    ? 'with --mac-backend fskit, macFUSE 5 must be enabled under File System Extensions and its libfuse 2 must take backend=fskit; ' +
      'try --mac-backend kext (docs/MACOS.md)'
    : 'is macFUSE installed and its system extension allowed (System Settings → Privacy & Security)? See docs/MACOS.md';
}
