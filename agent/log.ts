import pino, { type Logger } from 'pino';

/** Fields that may carry credentials; pino blanks them before a line is written. */
const REDACT = ['headers.authorization', 'headers.cookie', 'headers["proxy-authorization"]', 'req.headers.authorization', 'req.headers.cookie'];

/**
 * Structured JSON logs to stderr, written asynchronously so a burst of log lines never
 * blocks the event loop that serves FUSE. Below the level, a call costs a method lookup.
 */
export function createLogger (level: string): Logger {
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } },
    pino.destination({ dest: 2, sync: false, minLength: 0 }));
}
