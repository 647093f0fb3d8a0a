import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AgentStatus } from '../../agent/control/protocol';
import { useOriginAndAgent } from '../helpers/fixtures';
import { hashFile } from '../helpers/agent';
import { sha256 } from '../../tools/test-origin';

interface RpcReply { id: unknown; result?: unknown; error?: { code: number; message: string } }

/** A raw client: writes what it is given, collects reply lines, and notes when the agent closes. */
class RawClient {
  readonly socket: net.Socket;
  readonly replies: RpcReply[] = [];
  readonly closed: Promise<void>;
  #buffered = '';
  #waiting: Array<() => void> = [];

  private constructor (socket: net.Socket) {
    this.socket = socket;
    this.closed = once(socket, 'close').then(() => {});
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      this.#buffered += chunk;
      let nl: number;
      while ((nl = this.#buffered.indexOf('\n')) >= 0) {
        this.replies.push(JSON.parse(this.#buffered.slice(0, nl)) as RpcReply);
        this.#buffered = this.#buffered.slice(nl + 1);
        for (const w of this.#waiting.splice(0)) w();
      }
    });
  }

  static async connect (path: string): Promise<RawClient> {
    const socket = net.connect(path);
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  /** Sends raw text and waits for the next reply. */
  async ask (text: string | Buffer): Promise<RpcReply> {
    const count = this.replies.length;
    this.socket.write(text);
    while (this.replies.length === count) await new Promise<void>(resolve => this.#waiting.push(resolve));
    return this.replies[count];
  }
}

describe('bad input on the control socket', () => {
  const fx = useOriginAndAgent();

  it('answers each malformed request with the right JSON-RPC error and a message naming the problem', async () => {
    const c = await RawClient.connect(fx.agent.dirs.socket);
    const cases: Array<[string, number, RegExp]> = [
      ['{not json\n', -32700, /Parse error/],
      ['42\n', -32600, /expected an object/],
      ['"a string"\n', -32600, /expected an object/],
      ['null\n', -32600, /expected an object/],
      ['{"jsonrpc":"2.0","id":1}\n', -32600, /"method"/],
      ['{"jsonrpc":"1.0","id":1,"method":"agent.ping"}\n', -32600, /"jsonrpc": "2.0"/],
      ['{"jsonrpc":"2.0","id":2,"method":"no.such.method"}\n', -32601, /Method not found: "no\.such\.method"/],
      ['{"jsonrpc":"2.0","id":3,"method":"files.add","params":{"url":5}}\n', -32602, /"url" must be a non-empty string/],
      ['{"jsonrpc":"2.0","id":4,"method":"files.add","params":["http://x"]}\n', -32602, /params must be an object/],
      ['{"jsonrpc":"2.0","id":5,"method":"files.get","params":{"file":"x","extra":1}}\n', -32602, /unknown field "extra"/],
      ['{"jsonrpc":"2.0","id":6,"method":"files.add","params":{"url":"http://127.0.0.1/a","headers":{"x":1}}}\n', -32602, /header "x"/],
      ['{"jsonrpc":"2.0","id":7,"method":"files.add","params":{"url":"http://127.0.0.1/a","name":"../../etc/passwd"}}\n', -32000, /"\.\." segment/],
      ['{"jsonrpc":"2.0","id":8,"method":"files.add","params":{"name":"a"}}\n', -32602, /give "url", "urlCommand", or both/],
      ['{"jsonrpc":"2.0","id":9,"method":"files.add","params":{"urlCommand":["mint"]}}\n', -32602, /needs a "name"/],
      ['{"jsonrpc":"2.0","id":10,"method":"files.add","params":{"name":"a","urlCommand":"mint --x"}}\n', -32602, /"urlCommand" must be a non-empty array/],
      ['{"jsonrpc":"2.0","id":11,"method":"files.add","params":{"name":"a","urlCommand":[""]}}\n', -32602, /empty program/],
      ['{"jsonrpc":"2.0","id":12,"method":"files.setUrl","params":{"file":"a"}}\n', -32602, /give either "url" or "urlCommand"/],
      ['[]\n', -32600, /empty batch/],
    ];
    for (const [text, code, message] of cases) {
      const reply = await c.ask(text);
      assert.equal(reply.error?.code, code, `${text.trim()} -> ${JSON.stringify(reply)}`);
      assert.match(reply.error!.message, message, text.trim());
    }
    const huge = await c.ask(
      JSON.stringify(Array.from({ length: 10_000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'agent.ping' }))) + '\n'
    );
    assert.equal(huge.error?.code, -32600);
    assert.match(huge.error!.message, /batch of 10000 calls is over the limit of 100/);
    c.socket.write('[{"jsonrpc":"2.0","id":"a","method":"agent.ping"},{"jsonrpc":"2.0","id":"b","method":"nope"}]\n');
    await once(c.socket, 'data');
    const batch = c.replies[c.replies.length - 1] as unknown as RpcReply[];
    assert.ok(Array.isArray(batch) && batch.length === 2);
    assert.deepEqual(batch.find(r => r.id === 'a')?.result, 'pong');
    assert.equal(batch.find(r => r.id === 'b')?.error?.code, -32601);
    c.socket.end();
  });

  it('closes a connection whose line passes 1 MiB, after saying why', async () => {
    const c = await RawClient.connect(fx.agent.dirs.socket);
    c.socket.write('{"jsonrpc":"2.0","id":1,"method":"agent.ping","params":{"pad":"');
    c.socket.write('x'.repeat(1100 * 1024));
    await c.closed;
    assert.equal(c.replies[0]?.error?.code, -32600);
    assert.match(c.replies[0].error!.message, /longer than 1048576 bytes/);
  });

  it('survives random bytes, silent clients and half-closed connections, and still serves status and reads', async () => {
    const junk = await RawClient.connect(fx.agent.dirs.socket);
    for (let i = 0; i < 20; i++) junk.socket.write(Buffer.concat([randomBytes(4096), Buffer.from('\n')]));
    const silent = await RawClient.connect(fx.agent.dirs.socket);
    const partial = await RawClient.connect(fx.agent.dirs.socket);
    partial.socket.end('{"jsonrpc":"2.0","id":1,"meth'); // half a request, then half-close
    const halfClosed = await RawClient.connect(fx.agent.dirs.socket);
    halfClosed.socket.end('{"jsonrpc":"2.0","id":9,"method":"agent.ping"}\n');
    await Promise.race([halfClosed.closed, once(halfClosed.socket, 'data')]);
    junk.socket.destroy();
    silent.socket.destroy();
    await partial.closed;

    const status = await fx.agent.rpc<AgentStatus>('agent.status');
    assert.equal(status.mounted, true);
    const content = fx.origin.add('still-works.bin', 500_000);
    await fx.agent.add(fx.origin.url('still-works.bin'));
    assert.equal(await hashFile(fx.agent.path('still-works.bin')), sha256(content));
    assert.equal(fx.agent.proc.exitCode, null, 'the agent is still running');
  });
});
