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
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function seconds (value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds above 0');
  return n;
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
    .showHelpAfterError()
    .parse(argv, { from: 'node' });
  const o = program.opts<{ mount: string; cacheDir: string; stateDir: string; socket: string; readTimeout: number; readMaxWait: number; downloadStall: number; logLevel: string }>();
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
  };
}
