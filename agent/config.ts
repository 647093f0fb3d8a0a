import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultPaths } from './paths';

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
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function seconds (value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds above 0');
  return n;
}

/** "10G", "512M", "1.5GiB", "1073741824" -> bytes. */
export function byteSize (value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
  if (m === null) throw new InvalidArgumentError('expected a size such as 10G, 512M or 1073741824');
  const n = Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  if (n < 1024 * 1024) throw new InvalidArgumentError('must be at least 1 MiB');
  return Math.floor(n);
}

function absolute (value: string): string {
  return path.resolve(value);
}

/** Parses the agent's command line; each option can also come from FUSESTREAM_<NAME>. */
export function parseAgentConfig (argv: string[], version: string): AgentConfig {
  const d = defaultPaths();
  const program = new Command('fusestream-agent')
    .description('Mounts remote HTTP(S) files as a read-only FUSE filesystem that streams as programs read.\nRuns in the foreground; add files with `fsctl add URL`.')
    .version(version)
    .addOption(new Option('--mount <dir>', 'mount point').env('FUSESTREAM_MOUNT').default(d.mount).argParser(absolute))
    .addOption(new Option('--cache-dir <dir>', 'where temp files are kept').env('FUSESTREAM_CACHE_DIR').default(d.cacheDir).argParser(absolute))
    .addOption(new Option('--state-dir <dir>', 'where state and logs are kept').env('FUSESTREAM_STATE_DIR').default(d.stateDir).argParser(absolute))
    .addOption(new Option('--socket <path>', 'control socket for fsctl').env('FUSESTREAM_SOCKET').default(d.socket).argParser(absolute))
    .addOption(new Option('--read-timeout <seconds>', 'fail a waiting read after this long without data from the origin').env('FUSESTREAM_READ_TIMEOUT').default(20).argParser(seconds))
    .addOption(new Option('--read-max-wait <seconds>', 'fail a waiting read after this long in any case').env('FUSESTREAM_READ_MAX_WAIT').default(300).argParser(seconds))
    .addOption(new Option('--download-stall <seconds>', 'drop and retry a download connection silent this long').env('FUSESTREAM_DOWNLOAD_STALL').default(10).argParser(seconds))
    .addOption(new Option('--log-level <level>', 'log level').env('FUSESTREAM_LOG_LEVEL').default('info').choices(LOG_LEVELS))
    .addOption(new Option('--cache-max-bytes <size>', 'hard limit on cached bytes (e.g. 20G); default: 10 GiB or half the free space at first start, whichever is smaller').env('FUSESTREAM_CACHE_MAX_BYTES').argParser(byteSize))
    .addOption(new Option('--evict-on-close', 'drop a file\'s cached bytes when its last handle closes').env('FUSESTREAM_EVICT_ON_CLOSE').default(false))
    .addOption(new Option('--no-resume-downloads', 'do not continue unfinished downloads at start until a program reads them').env('FUSESTREAM_NO_RESUME_DOWNLOADS'))
    .showHelpAfterError()
    .parse(argv, { from: 'node' });
  const o = program.opts<{ mount: string; cacheDir: string; stateDir: string; socket: string; readTimeout: number; readMaxWait: number; downloadStall: number; logLevel: string; cacheMaxBytes?: number | string; evictOnClose: boolean | string; resumeDownloads: boolean }>();
  // Values from the environment or defaults skip argParser in some paths: normalise here.
  return {
    mount: path.resolve(o.mount),
    cacheDir: path.resolve(o.cacheDir),
    stateDir: path.resolve(o.stateDir),
    socket: path.resolve(o.socket),
    readTimeoutMs: seconds(String(o.readTimeout)) * 1000,
    readMaxWaitMs: seconds(String(o.readMaxWait)) * 1000,
    downloadStallMs: seconds(String(o.downloadStall)) * 1000,
    logLevel: o.logLevel,
    cacheMaxBytes: o.cacheMaxBytes === undefined ? null : byteSize(String(o.cacheMaxBytes)),
    evictOnClose: o.evictOnClose === true || o.evictOnClose === 'true' || o.evictOnClose === '1',
    resumeDownloads: o.resumeDownloads !== false,
  };
}
