/**
 * `npm run demo`: a local origin with sample files (one large and throttled, so streaming is
 * visible), an agent on a temporary mount with those files added, and what to try. Ctrl-C
 * stops the agent (which unmounts) and removes everything the demo made.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AGENT_NODE_FLAGS } from '../agent/node-flags';
import { AgentClient } from '../ctl/client';
import { TestOrigin } from '../tools/test-origin';

const MiB = 1024 * 1024;
const ROOT = path.resolve(__dirname, '..', '..');
/** The large file streams at this rate, slow enough to watch. */
const DEMO_RATE = 8 * MiB;

async function main (): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fusestream-demo-'));
  const mount = path.join(dir, 'FuseStream');
  const socket = path.join(dir, 'agent.sock');
  const origin = await TestOrigin.start();
  origin.add('videos/big-video.mp4', 256 * MiB, { throttle: DEMO_RATE });
  origin.add('photos/photo.jpg', 4 * MiB);
  origin.add('notes.txt', Buffer.from('Hello from fusestream.\nThis file came over HTTP from a local origin and was read through FUSE.\n'));

  const logFile = path.join(dir, 'agent.log');
  const log = await fs.open(logFile, 'w');
  const agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, path.join(ROOT, 'dist', 'agent', 'main.js'),
    '--mount', mount, '--cache-dir', path.join(dir, 'cache'), '--state-dir', path.join(dir, 'state'), '--socket', socket],
  { stdio: ['ignore', log.fd, log.fd] });

  let cleaning = false;
  const cleanup = async (code: number): Promise<void> => {
    if (cleaning) return;
    cleaning = true;
    process.stdout.write('\nstopping the demo: the agent unmounts, temporary files go\n');
    if (agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise(resolve => agent.once('exit', resolve));
    }
    await log.close();
    await origin.close();
    await fs.rm(dir, { recursive: true, force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => { void cleanup(0); });
  process.on('SIGTERM', () => { void cleanup(0); });
  agent.once('exit', code => {
    if (!cleaning) {
      process.stderr.write(`the agent stopped (exit ${code}); its log:\n`);
      void fs.readFile(logFile, 'utf8').then(t => process.stderr.write(t)).finally(() => { void cleanup(1); });
    }
  });

  const client = await connectWhenReady(socket, agent);
  for (const name of ['videos/big-video.mp4', 'photos/photo.jpg', 'notes.txt']) {
    await client.call('files.add', { url: origin.url(name), name });
  }
  client.close();

  const fsctl = `fsctl --socket ${socket}`;
  process.stdout.write(`
fusestream demo: three files from a local origin are mounted at
  ${mount}

Try, in another terminal (fsctl is on your PATH after npm link; see the README):
  ls -lR ${mount}                               # sizes at once, nothing downloaded yet
  cat ${mount}/notes.txt
  cat ${mount}/videos/big-video.mp4 > /dev/null &   # streams at ${DEMO_RATE / MiB} MiB/s while it arrives
  ${fsctl} status --watch                      # live progress (Ctrl-C to leave)
  ${fsctl} waiters                             # reads waiting for bytes
  ${fsctl} cancel videos/big-video.mp4         # the reader gets EIO at once
  ${fsctl} resume videos/big-video.mp4

The agent's log: ${logFile}
Press Ctrl-C here to stop the demo and clean up.
`);
}

/** Connects once the agent's socket answers; gives up if the agent exits first. */
async function connectWhenReady (socket: string, agent: ReturnType<typeof spawn>): Promise<AgentClient> {
  for (let i = 0; i < 200; i++) {
    if (agent.exitCode !== null) throw new Error('the agent exited before it was ready');
    try {
      const client = await AgentClient.connect(socket);
      const status = await client.call<{ mounted: boolean }>('agent.status');
      if (status.mounted) return client;
      client.close();
    } catch { /* not listening yet */ }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  throw new Error('the agent did not become ready within 20 s');
}

main().catch(err => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
