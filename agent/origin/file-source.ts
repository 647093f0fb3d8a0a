import { FsError } from '../errors';
import type { RequestHeaders } from './origin-info';
import { credentialsExpireAt } from './url-expiry';

/** Where one connection goes: a URL and the headers it needs, and until when they work. */
export interface Endpoint {
  readonly url: string;
  readonly headers: RequestHeaders;
  /** When the URL's signature or the token in the headers stops working (ms since the epoch), or null when unknown. */
  readonly expiresAt: number | null;
}

/** What `fsctl info` shows of a file's source. */
export interface SourceDetails {
  kind: 'url' | 'command';
  /** When the endpoint in use expires, or null when unknown. */
  expiresAt: number | null;
  /** Times a url-command was run for a fresh endpoint since the agent started. */
  refreshes: number;
  /** The url-command's last failure, while it lasts (cleared by the next success). */
  error: string | null;
  /** The URL in use: the one added, or the last one the url-command gave (null before its first run). */
  url: string | null;
}

/**
 * Gives every connection of a file its URL and headers: the ones the user added, or fresh
 * ones from the file's url-command. Downloads and probes ask it right before each request.
 */
export interface FileSource {
  readonly kind: 'url' | 'command';
  /** The endpoint for a request starting now; may run the url-command (rejects with FsError). */
  endpoint (signal?: AbortSignal): Promise<Endpoint>;
  /**
   * A request with `used` was refused (401 or 403). True when a retry may work, because the
   * next `endpoint()` brings fresh credentials; false when the refusal is final.
   */
  refused (used: Endpoint): boolean;
  /** A request with `used` was answered (2xx): it worked at least once, so a later refusal is not final. */
  accepted (used: Endpoint): void;
  describe (): SourceDetails;
  /** Ends a pause after a failure: the next `endpoint()` tries again at once (fsctl resume, a new open). */
  retryNow (): void;
  /** Stops any command still running (the file left the mount, or its source was replaced). */
  close (): void;
}

/** The source cannot give an endpoint now (its command failed); worth another try later. */
export class SourceUnavailableError extends FsError {
  constructor (message: string) { super('EIO', message); }
}

/** A fixed URL and headers, as added: nothing to refresh, so a refusal is final. */
export class UrlSource implements FileSource {
  readonly kind = 'url';
  readonly #endpoint: Endpoint;

  constructor (url: string, headers: RequestHeaders) {
    this.#endpoint = { url, headers, expiresAt: credentialsExpireAt(url, headers) };
  }

  endpoint (): Promise<Endpoint> { return Promise.resolve(this.#endpoint); }
  refused (): boolean { return false; }
  accepted (): void {}
  describe (): SourceDetails {
    return { kind: 'url', expiresAt: this.#endpoint.expiresAt, refreshes: 0, error: null, url: this.#endpoint.url };
  }

  retryNow (): void {}
  close (): void {}
}
