import net from 'node:net';
import { JSONRPCClient, JSONRPCErrorException, type JSONRPCResponse } from 'json-rpc-2.0';

/** No agent answered on the socket. */
export class NoAgentError extends Error {
  constructor (readonly socketPath: string, cause: unknown) {
    super(`no fusestream agent is running (nothing answers on ${socketPath})`, { cause });
  }
}

/** The agent answered with a JSON-RPC error. */
export class AgentError extends Error {
  constructor (readonly code: number, message: string, readonly data: unknown) { super(message); }
}

/**
 * A JSON-RPC client over the agent's Unix socket: one JSON message per line each way.
 * Notifications the agent pushes (events) go to `onNotification`.
 */
export class AgentClient {
  readonly #socket: net.Socket;
  readonly #rpc: JSONRPCClient;
  onNotification: ((method: string, params: unknown) => void) | null = null;

  private constructor (socket: net.Socket) {
    this.#socket = socket;
    this.#rpc = new JSONRPCClient(request => {
      socket.write(JSON.stringify(request) + '\n');
    });
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() === '') continue;
        const msg = JSON.parse(line) as JSONRPCResponse & { method?: string; params?: unknown };
        if (typeof msg.method === 'string') this.onNotification?.(msg.method, msg.params);
        else this.#rpc.receive(msg);
      }
    });
    socket.on('close', () => this.#rpc.rejectAllPendingRequests('the agent closed the connection'));
  }

  static connect (socketPath: string): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => { socket.removeAllListeners('error'); socket.on('error', () => {}); resolve(new AgentClient(socket)); });
      socket.once('error', err => reject(new NoAgentError(socketPath, err)));
    });
  }

  async call<T> (method: string, params?: object): Promise<T> {
    // A request written to a closed socket would never be answered: fail it at once.
    if (this.#socket.destroyed || !this.#socket.writable) throw new Error('the agent closed the connection');
    try {
      return await this.#rpc.request(method, params) as T;
    } catch (err) {
      if (err instanceof JSONRPCErrorException) throw new AgentError(err.code, err.message, err.data);
      throw err;
    }
  }

  onClose (cb: () => void): void { this.#socket.once('close', cb); }

  close (): void { this.#socket.end(); }
}
