import path from 'node:path';
import pino, { type Logger, type TransportTargetOptions } from 'pino';

/** Fields that may carry credentials; pino blanks them before a line is written. */
const REDACT = [
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
];
/** One log file grows to this size before it rolls over... */
const LOG_FILE_SIZE = '10m';
/** ...and this many rolled files are kept besides the active one. */
const LOG_FILES_KEPT = 4;

/** The folder of the agent's log files; `current.log` there links to the active one. */
export function logDir (stateDir: string): string {
  return path.join(stateDir, 'logs');
}

/**
 * Structured JSON logs to size-bounded rotating files in the state dir, and to stderr
 * (pretty on a terminal, JSON otherwise, as for the journal). Both are written by pino's
 * worker thread, so logging never blocks the event loop that serves FUSE; below the level
 * a log call costs a method lookup. The log folder (`logDir`) must exist already: pino-roll
 * links current.log before its own mkdir runs, so main makes it first.
 */
export function createLogger (level: string, stateDir: string): Logger {
  const stderrTarget: TransportTargetOptions<Record<string, unknown>> = process.stderr.isTTY
    ? { target: 'pino-pretty', level, options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }
    : { target: 'pino/file', level, options: { destination: 2 } };
  const transport = pino.transport<Record<string, unknown>>({
    targets: [
      {
        target: 'pino-roll',
        level,
        options: {
          file: path.join(logDir(stateDir), 'agent'),
          extension: '.log',
          size: LOG_FILE_SIZE,
          mkdir: true,
          symlink: true,
          mode: 0o600,
          limit: { count: LOG_FILES_KEPT, removeOtherLogFiles: true },
        },
      },
      stderrTarget,
    ],
  });
  // A broken log file must not take the agent down without a word.
  transport.on('error', (err: Error) => process.stderr.write(`fusestream-agent: logging failed: ${err.message}\n`));
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } }, transport);
}
