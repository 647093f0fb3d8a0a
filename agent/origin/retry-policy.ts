import { errors } from 'undici';

/** First pause after a failed attempt; doubles each time. */
const BACKOFF_START_MS = 250;
/** Longest pause between attempts, so a recovered origin is noticed soon. */
const BACKOFF_MAX_MS = 10_000;
/** Longest Retry-After we honour; a longer one is cut to this. */
const RETRY_AFTER_MAX_MS = 60_000;
/** Attempts in a row that bring no byte before a download gives up with an error. */
export const MAX_ATTEMPTS_WITHOUT_PROGRESS = 8;

/** 5xx, 408 and 429 are worth another try; every other 4xx is the origin's final word. */
export function isRetryableStatus (status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Network-level failures (refused, reset, timed out, dropped mid-body) are retried. */
export function isRetryableError (err: unknown): boolean {
  if (err instanceof errors.RequestAbortedError) return false;
  if (err instanceof errors.UndiciError) return true; // socket, timeouts, closed mid-body
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN|NOTFOUND)$/.test(code);
}

/** Pause before attempt number `attempt` (1 = the first retry), with jitter. */
export function backoffMs (attempt: number, retryAfterHeader: string | null = null): number {
  const hinted = parseRetryAfter(retryAfterHeader);
  if (hinted !== null) return Math.min(hinted, RETRY_AFTER_MAX_MS);
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

export function parseRetryAfter (value: string | null): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
