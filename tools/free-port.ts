import { once } from 'node:events';
import net from 'node:net';

/** A TCP port free on 127.0.0.1 now, for a server started by another program (nginx, tinyproxy). */
export async function freePort (): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}
