import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { BufferPool } from '../buffer-pool';
import { CONNECT_AND_HEADERS_TIMEOUT_MS } from './http-client';
import type { RequestHeaders } from './origin-info';

/** Some bytes of a body, in a pooled buffer: `release` once they are written (or not wanted). */
export interface BodyChunk {
  readonly data: Buffer;
  release (): void;
}

/** A GET's answer whose body arrives in pooled buffers. */
export interface PooledResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /**
   * The next bytes of the body (all that arrived since the last call, up to a buffer's end);
   * null at its end; rejects as the request failed.
   */
  next (): Promise<BodyChunk | null>;
  /** Stops the body: the connection goes, and nothing more is delivered. Never throws. */
  drop (): void;
}

export interface PooledRequest {
  headers: RequestHeaders;
  /** Fails the request when the body goes quiet this long (a stalled origin). */
  bodyTimeoutMs: number;
  signal: AbortSignal;
  /** Where the body's bytes go. */
  pool: BufferPool;
  /** Bytes received but not yet taken past which the socket is paused (TCP then slows the origin). */
  highWater: number;
}

/**
 * A GET whose body skips Node streams: undici's dispatch handler copies each socket read into
 * the pooled buffer being filled, and the consumer takes what has arrived when it asks. At a
 * fast origin a buffer fills with several reads before it is taken, so writes are large and
 * few; at a slow one each read is taken as it lands, so readers wait no longer than before.
 * The socket's own buffers die young (nothing keeps them past the copy).
 */
export function requestPooled (dispatcher: Dispatcher, url: string, req: PooledRequest): Promise<PooledResponse> {
  const u = new URL(url);
  const body = new PooledBody(req);
  dispatcher.dispatch({
    origin: u.origin,
    path: u.pathname + u.search,
    method: 'GET',
    headers: req.headers,
    bodyTimeout: req.bodyTimeoutMs,
    headersTimeout: CONNECT_AND_HEADERS_TIMEOUT_MS,
  }, body);
  return body.started;
}

/** A pooled buffer shared by the chunks cut from it: back to the pool when the last is released and it is full. */
class Block {
  refs = 1; // the filler's
  constructor (readonly buf: Buffer, readonly pool: BufferPool) {}
  unref (): void {
    if (--this.refs === 0) this.pool.give(this.buf);
  }
}

class Chunk implements BodyChunk {
  #block: Block | null;
  constructor (readonly data: Buffer, block: Block) {
    this.#block = block;
    block.refs++;
  }

  release (): void {
    this.#block?.unref();
    this.#block = null;
  }
}

class PooledBody implements Dispatcher.DispatchHandler, PooledResponse {
  readonly started: Promise<PooledResponse>;
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  readonly #req: PooledRequest;
  #controller: Dispatcher.DispatchController | null = null;
  #start!: { resolve: (r: PooledResponse) => void; reject: (err: Error) => void };
  #wait: { resolve: (c: BodyChunk | null) => void; reject: (err: Error) => void } | null = null;
  /** The buffer being filled, and the bytes of it not yet handed out: [taken, filled). */
  #block: Block | null = null;
  #taken = 0;
  #filled = 0;
  /** Chunks cut and waiting to be taken (a buffer that filled up while no one asked). */
  readonly #ready: Chunk[] = [];
  #readyBytes = 0;
  #ended = false;
  #error: Error | null = null;
  #dropped = false;
  readonly #onAbort = (): void => this.#controller?.abort(this.#req.signal.reason as Error);

  constructor (req: PooledRequest) {
    this.#req = req;
    this.started = new Promise((resolve, reject) => { this.#start = { resolve, reject }; });
  }

  // Dispatcher.DispatchHandler: undici's side.

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#req.signal.aborted) return this.#onAbort();
    this.#req.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  onResponseStart (_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.statusCode = statusCode;
    this.headers = headers;
    this.#start.resolve(this);
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#dropped || chunk.length === 0) return;
    let at = 0;
    while (at < chunk.length) {
      if (this.#block === null) {
        this.#block = new Block(this.#req.pool.take(), this.#req.pool);
        this.#taken = this.#filled = 0;
      }
      const buf = this.#block.buf;
      const n = chunk.copy(buf, this.#filled, at);
      at += n;
      this.#filled += n;
      if (this.#filled === buf.length) this.#cut(); // full: cut and let go
    }
    if (this.#wait !== null) {
      const wait = this.#wait;
      this.#wait = null;
      wait.resolve(this.#take());
    }
    if (this.#readyBytes + this.#filled - this.#taken >= this.#req.highWater) controller.pause();
  }

  onResponseEnd (): void {
    this.#ended = true;
    this.#cut();
    this.#settle();
  }

  /** Bytes that came before the error are still delivered, then the error: a retry resumes after them. */
  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    this.#error = err;
    this.#start.reject(err);
    this.#cut();
    this.#settle();
  }

  // PooledResponse: the consumer's side.

  next (): Promise<BodyChunk | null> {
    if (this.#dropped) return Promise.resolve(null);
    const chunk = this.#take();
    if (chunk !== null) return Promise.resolve(chunk);
    if (this.#error !== null) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => { this.#wait = { resolve, reject }; });
  }

  drop (): void {
    if (this.#dropped) return;
    this.#dropped = true;
    for (const c of this.#ready.splice(0)) c.release();
    this.#readyBytes = 0;
    this.#letGoOfBlock();
    if (!this.#ended && this.#error === null) this.#controller?.abort(new Error('body no longer wanted'));
    this.#req.signal.removeEventListener('abort', this.#onAbort);
  }

  /** What has arrived and not been taken, oldest first; resumes the socket once below the high-water mark. */
  #take (): Chunk | null {
    let chunk = this.#ready.shift() ?? null;
    if (chunk !== null) this.#readyBytes -= chunk.data.length;
    else if (this.#block !== null && this.#filled > this.#taken) chunk = this.#cutPart();
    if (this.#controller?.paused === true && this.#readyBytes + this.#filled - this.#taken < this.#req.highWater) {
      this.#controller.resume();
    }
    return chunk;
  }

  /** The bytes of the buffer being filled not yet handed out, as a chunk; filling goes on after them. */
  #cutPart (): Chunk {
    const block = this.#block!;
    const chunk = new Chunk(block.buf.subarray(this.#taken, this.#filled), block);
    this.#taken = this.#filled;
    return chunk;
  }

  /** The buffer is full (or the body over): its last bytes wait as a chunk, and it goes back to the pool once they are released. */
  #cut (): void {
    if (this.#dropped || this.#block === null) return;
    if (this.#filled > this.#taken) {
      const chunk = this.#cutPart();
      this.#ready.push(chunk);
      this.#readyBytes += chunk.data.length;
    }
    this.#letGoOfBlock();
  }

  #letGoOfBlock (): void {
    this.#block?.unref();
    this.#block = null;
  }

  /** The body ended or failed: a waiting consumer gets what is left, then the end or the error. */
  #settle (): void {
    this.#req.signal.removeEventListener('abort', this.#onAbort);
    if (this.#wait === null) return;
    const wait = this.#wait;
    this.#wait = null;
    const chunk = this.#take();
    if (chunk !== null) wait.resolve(chunk);
    else if (this.#error !== null) wait.reject(this.#error);
    else wait.resolve(null);
  }
}
