import { execFile, type ExecFileException } from 'node:child_process';
import path from 'node:path';
import { FsError } from '../errors';
import { SourceUnavailableError, type Endpoint, type FileSource, type SourceDetails } from './file-source';
import type { RequestHeaders } from './origin-info';
import { credentialsExpireAt } from './url-expiry';

/** A url-command that runs longer than this is killed and counts as failed. */
const URL_COMMAND_TIMEOUT_MS = 30_000;
/** More output than a URL and a few headers could need: the command is misbehaving. */
const MAX_OUTPUT_BYTES = 64 * 1024;
/**
 * A fresh endpoint is asked for this long before the current one expires at most, or a
 * fifth of its lifetime when that is shorter (links valid for seconds, in the tests): early
 * enough that a new connection never starts with credentials about to lapse.
 */
const REFRESH_MARGIN_MAX_MS = 60_000;
const REFRESH_MARGIN_SHARE = 0.2;
/** Pause after a failed run before the command is run again; doubles up to the max. */
const FAILURE_PAUSE_START_MS = 500;
const FAILURE_PAUSE_MAX_MS = 10_000;

/** What the command learns of the file it is asked about, through its environment. */
export interface CommandContext {
  /** The file's name in the mount: FUSESTREAM_FILE. */
  name: string;
  /** The URL it was added with, or "": FUSESTREAM_URL. */
  url: string;
  /** Headers the file was added with: sent too, unless the command gives the same ones. */
  headers: RequestHeaders;
}

export interface CommandSourceOptions {
  timeoutMs?: number;
  /** Wall clock, ms since the epoch; the tests move it. */
  now?: () => number;
  /** Told after each run: null, or why it failed. */
  onRun?: (err: FsError | null, minted: Endpoint | null) => void;
}

interface Minted {
  endpoint: Endpoint;
  at: number;
  /** Minted because the one before was refused. */
  afterRefusal: boolean;
  /** A request with it was answered: bytes came through it. */
  accepted: boolean;
  /** Refused for good: fsctl resume (retryNow) mints a new one rather than reuse it. */
  refused: boolean;
}

/**
 * A file whose URL (and headers) come from a command the user gave: an OAuth token or a
 * signed link that only an API can make. The command runs without a shell, with a timeout,
 * whenever no endpoint is at hand or the one at hand is about to expire; one run serves
 * every connection waiting for it. A failed run is retried after a growing pause, and
 * meanwhile requests fail at once with its error (its exit status and the first line of its
 * stderr). Its output is never logged nor put in an error: it holds credentials.
 */
export class CommandSource implements FileSource {
  readonly kind = 'command';
  readonly argv: readonly string[];
  readonly #context: CommandContext;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #stop = new AbortController();
  readonly #onRun: CommandSourceOptions['onRun'] | null;
  #current: Minted | null = null;
  #running: Promise<Endpoint> | null = null;
  #refreshes = 0;
  #failures = 0;
  #lastError: FsError | null = null;
  #retryAt = 0;
  #nextIsAfterRefusal = false;

  constructor (argv: readonly string[], context: CommandContext, opts: CommandSourceOptions = {}) {
    if (argv.length === 0 || argv[0] === '') throw new FsError('EINVAL', 'the url-command is empty');
    this.argv = argv;
    this.#context = context;
    this.#timeoutMs = opts.timeoutMs ?? URL_COMMAND_TIMEOUT_MS;
    this.#now = opts.now ?? Date.now;
    this.#onRun = opts.onRun ?? null;
  }

  async endpoint (signal?: AbortSignal): Promise<Endpoint> {
    const now = this.#now();
    const current = this.#current;
    if (current !== null && !this.#dueWithin(current, now, 1)) {
      // Past the first warning: mint the next one in the background, keep using this one.
      if (this.#dueWithin(current, now, 2)) this.#mint().catch(() => { /* shown by describe() */ });
      return current.endpoint;
    }
    try {
      return await abortable(this.#mint(), signal);
    } catch (err) {
      // The command failed, but what we hold has not lapsed yet: use it meanwhile.
      const stillValid = current !== null && this.#current === current && (current.endpoint.expiresAt ?? 0) > this.#now();
      if (stillValid && !signal?.aborted) return current.endpoint;
      throw err;
    }
  }

  refused (used: Endpoint): boolean {
    const current = this.#current;
    if (current === null || current.endpoint !== used) return true; // already replaced: try the new one
    // Refused for good: a link minted because the one before was refused, refused on its
    // first request, before any byte came through it. A link that worked and then lapsed
    // (however short-lived) is minted again, so a long read outlives many short links.
    if (current.afterRefusal && !current.accepted) {
      current.refused = true;
      return false;
    }
    this.#current = null;
    this.#nextIsAfterRefusal = true;
    return true;
  }

  describe (): SourceDetails {
    return {
      kind: 'command',
      expiresAt: this.#current?.endpoint.expiresAt ?? null,
      refreshes: this.#refreshes,
      error: this.#lastError?.message ?? null,
      url: this.#current?.endpoint.url ?? null,
    };
  }

  accepted (used: Endpoint): void {
    if (this.#current?.endpoint === used) this.#current.accepted = true;
  }

  /** fsctl resume, a new open of a failed file: no pause, and a link refused for good is minted again. */
  retryNow (): void {
    this.#retryAt = 0;
    if (this.#current?.refused === true) this.#current = null;
  }

  close (): void { this.#stop.abort(); }

  /** True when `m` expires within `margins` refresh margins of `now`. */
  #dueWithin (m: Minted, now: number, margins: number): boolean {
    const expiresAt = m.endpoint.expiresAt;
    if (expiresAt === null) return false;
    const margin = Math.min(REFRESH_MARGIN_MAX_MS, Math.max(0, expiresAt - m.at) * REFRESH_MARGIN_SHARE);
    return now >= expiresAt - margins * margin;
  }

  #mint (): Promise<Endpoint> {
    if (this.#running !== null) return this.#running;
    if (this.#lastError !== null && this.#now() < this.#retryAt) return Promise.reject(this.#lastError);
    const afterRefusal = this.#nextIsAfterRefusal;
    this.#running = this.#run().then(
      endpoint => {
        this.#current = { endpoint, at: this.#now(), afterRefusal, accepted: false, refused: false };
        this.#nextIsAfterRefusal = false;
        this.#refreshes++;
        this.#failures = 0;
        this.#lastError = null;
        this.#onRun?.(null, endpoint);
        return endpoint;
      },
      (err: FsError) => {
        this.#failures++;
        this.#lastError = err;
        this.#retryAt = this.#now() + Math.min(FAILURE_PAUSE_MAX_MS, FAILURE_PAUSE_START_MS * 2 ** (this.#failures - 1));
        if (!this.#stop.signal.aborted) this.#onRun?.(err, null);
        throw err;
      }
    ).finally(() => { this.#running = null; });
    return this.#running;
  }

  #run (): Promise<Endpoint> {
    const [file, ...args] = this.argv;
    const program = path.basename(file);
    return new Promise((resolve, reject) => {
      execFile(file, args, {
        env: { ...process.env, FUSESTREAM_FILE: this.#context.name, FUSESTREAM_URL: this.#context.url },
        timeout: this.#timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_OUTPUT_BYTES,
        signal: this.#stop.signal,
        windowsHide: true,
      }, (err, stdout, stderr) => {
        if (err === null) {
          try {
            const minted = parseCommandOutput(stdout, this.#now());
            resolve({ ...minted, headers: { ...this.#context.headers, ...minted.headers } });
          } catch (parseErr) {
            reject(new SourceUnavailableError(`url-command ${program} ${(parseErr as Error).message}`));
          }
          return;
        }
        reject(new SourceUnavailableError(`url-command ${program} failed: ${failureReason(err, stderr, this.#timeoutMs)}`));
      });
    });
  }
}

/** Why a run failed, in words: never its stdout, which may hold half a credential. */
function failureReason (err: ExecFileException, stderr: string, timeoutMs: number): string {
  if (err.code === 'ENOENT') return 'the program was not found';
  if (err.code === 'EACCES') return 'the program may not be run (permission denied)';
  if (err.name === 'AbortError') return 'stopped';
  if (err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return `it printed more than ${MAX_OUTPUT_BYTES} bytes`;
  const firstLine = stderr.split('\n').map(l => l.trim()).find(l => l !== '')?.slice(0, 200);
  const how = err.killed === true && err.signal === 'SIGKILL'
    ? `timed out after ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`
    : typeof err.code === 'number' ? `exit status ${err.code}` : `killed by ${err.signal ?? 'a signal'}`;
  return firstLine === undefined ? how : `${how}: ${firstLine}`;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A url-command's stdout: a URL on the first line, or a JSON object
 * `{"url": …, "headers": {…}, "expiresAt": <epoch s or ISO 8601>, "expiresIn": <seconds>}`
 * of which only `url` is required. Throws an Error whose message never quotes the output.
 */
export function parseCommandOutput (stdout: string, now: number): Endpoint {
  const text = stdout.trim();
  let url: unknown;
  let headers: RequestHeaders = {};
  let stated: number | null = null;
  if (text.startsWith('{')) {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Error('printed JSON that does not parse');
    }
    url = obj.url;
    headers = parseHeaders(obj.headers);
    stated = parseExpiry(obj.expiresAt, obj.expiresIn, now);
  } else {
    url = text.split('\n')[0]?.trim();
  }
  if (typeof url !== 'string' || url === '') throw new Error('printed no URL');
  let parsed: URL;
  try { parsed = new URL(url); } catch { throw new Error('printed something that is not a URL'); }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`printed a ${parsed.protocol} URL; only http and https work`);
  }
  const fromCredentials = credentialsExpireAt(parsed.href, headers);
  const times = [stated, fromCredentials].filter((t): t is number => t !== null);
  return { url: parsed.href, headers, expiresAt: times.length === 0 ? null : Math.min(...times) };
}

function parseHeaders (v: unknown): RequestHeaders {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error('printed "headers" that is not an object');
  const out: RequestHeaders = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!HEADER_NAME.test(k)) throw new Error('printed a header name that is not valid');
    if (typeof val !== 'string' || /[\r\n\0]/.test(val)) throw new Error(`printed a value for header ${k} that is not a one-line string`);
    out[k.toLowerCase()] = val;
  }
  return out;
}

function parseExpiry (at: unknown, inSeconds: unknown, now: number): number | null {
  if (typeof at === 'number' && Number.isFinite(at)) return at < 1e11 ? at * 1000 : at; // seconds or ms since the epoch
  if (typeof at === 'string') {
    const t = Date.parse(at);
    if (!Number.isNaN(t)) return t;
  }
  if (typeof inSeconds === 'number' && Number.isFinite(inSeconds) && inSeconds >= 0) return now + inSeconds * 1000;
  return null;
}

/** Rejects as soon as `signal` aborts, leaving `p` to settle on its own (a shared command run). */
function abortable<T> (p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(new FsError('ECANCELED', 'request was cancelled'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new FsError('ECANCELED', 'request was cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
