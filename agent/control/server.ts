import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createJSONRPCErrorResponse, type JSONRPCResponse, type JSONRPCServer } from 'json-rpc-2.0';
import type { Logger } from 'pino';
import { FsError } from '../errors';
import { MAX_BATCH_CALLS, MAX_LINE_BYTES, RpcError } from './protocol';
import { makeDir } from '../make-dir';

/** Answers queued for a client that does not read them; past this it is cut off. */
const MAX_UNREAD_OUTPUT_BYTES = 16 * 1024 * 1024;
/** Queued output past which events (not answers) are dropped for that client. */
const EVENT_DROP_BYTES = 1024 * 1024;

/** One client connection; passed to every method as JSON-RPC server params. */
export class Connection {
  readonly #socket: net.Socket;
  constructor (socket: net.Socket) { this.#socket = socket; }

  get open (): boolean { return !this.#socket.destroyed && this.#socket.writable; }

  send (message: unknown): void {
    if (!this.open) return;
    this.#socket.write(JSON.stringify(message) + '\n');
    if (this.#socket.writableLength > MAX_UNREAD_OUTPUT_BYTES) this.#socket.destroy();
  }

  /** Sends unless the client is behind; then drops, so a slow reader never slows the agent. */
  sendDroppable (message: unknown): void {
    if (!this.open) return;
    if (this.#socket.writableLength > EVENT_DROP_BYTES) return;
    this.#socket.write(JSON.stringify(message) + '\n');
  }

  onClose (cb: () => void): void { this.#socket.once('close', cb); }
}

/**
 * The control socket: newline-framed JSON-RPC 2.0 on a Unix socket that only its owner can
 * reach (folder 0700, socket 0600). Each line is parsed and checked here; the methods
 * themselves live in methods.ts.
 */
export class ControlServer {
  readonly socketPath: string;
  readonly #rpc: JSONRPCServer<Connection>;
  readonly #log: Logger;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor (socketPath: string, rpc: JSONRPCServer<Connection>, log: Logger) {
    this.socketPath = socketPath;
    this.#rpc = rpc;
    this.#log = log;
    this.#server = net.createServer(socket => this.#accept(socket));
  }

  /** Claims the socket; fails if another agent already answers on it. */
  async listen (): Promise<void> {
    const dir = path.dirname(this.socketPath);
    await makeDir(dir);
    await fs.chmod(dir, 0o700);
    if (await isAnswering(this.socketPath)) {
      throw new FsError('EEXIST', `another fusestream agent is already running on ${this.socketPath}`);
    }
    await fs.rm(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.socketPath, () => { this.#server.off('error', reject); resolve(); });
    });
    await fs.chmod(this.socketPath, 0o600);
  }

  async close (): Promise<void> {
    const closed = new Promise<void>(resolve => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
    await fs.rm(this.socketPath, { force: true });
  }

  #accept (socket: net.Socket): void {
    this.#sockets.add(socket);
    const conn = new Connection(socket);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', err => this.#log.debug({ err }, 'control client error'));
    socket.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        const part = chunk.subarray(start, nl);
        start = nl + 1;
        const lineBytes = pendingBytes + part.length;
        const line = pendingBytes === 0 ? part : Buffer.concat([...pending, part], lineBytes);
        pending = [];
        pendingBytes = 0;
        if (lineBytes > MAX_LINE_BYTES) return this.#tooLong(conn, socket);
        this.#handleLine(line.toString('utf8'), conn);
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > MAX_LINE_BYTES) this.#tooLong(conn, socket);
      }
    });
  }

  #tooLong (conn: Connection, socket: net.Socket): void {
    const message = `request line is longer than ${MAX_LINE_BYTES} bytes; closing the connection`;
    conn.send(createJSONRPCErrorResponse(null, RpcError.InvalidRequest, message));
    socket.end();
    socket.pause();
  }

  #handleLine (line: string, conn: Connection): void {
    if (line.trim() === '') return;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (err) {
      return conn.send(createJSONRPCErrorResponse(null, RpcError.ParseError, `Parse error: ${(err as Error).message}`));
    }
    if (!Array.isArray(message) && !isRequestShaped(message)) {
      const id = typeof message === 'object' && message !== null && 'id' in message ? (message as { id: unknown }).id : null;
      return conn.send(createJSONRPCErrorResponse(typeof id === 'string' || typeof id === 'number' ? id : null, RpcError.InvalidRequest,
        'Invalid Request: expected an object with "jsonrpc": "2.0", a string "method", and "params" as an object or array if given'));
    }
    if (Array.isArray(message)) {
      if (message.length === 0) return conn.send(createJSONRPCErrorResponse(null, RpcError.InvalidRequest, 'Invalid Request: empty batch'));
      if (message.length > MAX_BATCH_CALLS) {
        const tooMany = `Invalid Request: a batch of ${message.length} calls is over the limit of ${MAX_BATCH_CALLS}`;
        return conn.send(createJSONRPCErrorResponse(null, RpcError.InvalidRequest, tooMany));
      }
    }
    this.#rpc.receive(message as never, conn).then(
      (response: JSONRPCResponse | JSONRPCResponse[] | null) => { if (response !== null) conn.send(response); },
      (err: unknown) => this.#log.error({ err }, 'control request failed unexpectedly')
    );
  }
}

function isRequestShaped (m: unknown): boolean {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return r.jsonrpc === '2.0' && typeof r.method === 'string' &&
    (r.params === undefined || (typeof r.params === 'object' && r.params !== null)) &&
    (r.id === undefined || r.id === null || typeof r.id === 'string' || typeof r.id === 'number');
}

/** True when something accepts connections on the socket path. */
function isAnswering (socketPath: string): Promise<boolean> {
  return new Promise(resolve => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
}
