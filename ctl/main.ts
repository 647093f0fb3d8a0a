#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import Table from 'cli-table3';
import { defaultPaths } from '../agent/paths';
import { Methods, type AddFileResult, type AgentStatus, type FileSummary, type WaiterSummary } from '../agent/control/protocol';
import { AgentClient, AgentError, NoAgentError } from './client';
import { bytes, duration, percent } from './format';

/** fsctl's exit codes, as documented in the README. */
const EXIT = { ok: 0, refused: 1, usage: 2, noAgent: 3 } as const;

interface GlobalOptions { socket: string; json: boolean }

const program = new Command('fsctl')
  .description('Controls a running fusestream agent over its socket.')
  .addOption(new Option('--socket <path>', 'the agent\'s control socket').env('FUSESTREAM_SOCKET').default(defaultPaths().socket))
  .option('--json', 'print machine-readable JSON only', false)
  .showHelpAfterError()
  .exitOverride();

function globals (): GlobalOptions {
  return program.opts<GlobalOptions>();
}

/** Connects, runs one command's calls, prints, and turns failures into exit codes. */
async function withAgent (run: (client: AgentClient, json: boolean) => Promise<void>): Promise<void> {
  const { socket, json } = globals();
  let client: AgentClient;
  try {
    client = await AgentClient.connect(socket);
  } catch (err) {
    if (err instanceof NoAgentError) {
      const start = socket === defaultPaths().socket ? 'fusestream-agent' : `fusestream-agent --socket ${socket}`;
      fail(EXIT.noAgent, `no fusestream agent is running (nothing answers on ${socket}); start one with: ${start}`, json);
    }
    throw err;
  }
  try {
    await run(client, json);
  } catch (err) {
    if (err instanceof AgentError) fail(EXIT.refused, err.message, json, err.data);
    throw err;
  } finally {
    client.close();
  }
}

function fail (code: number, message: string, json: boolean, data?: unknown): never {
  if (json) process.stdout.write(JSON.stringify({ error: { message, ...(data !== undefined ? { data } : {}) } }) + '\n');
  else process.stderr.write(`fsctl: ${message}\n`);
  process.exit(code);
}

function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

program.command('add')
  .description('add a remote file to the mount')
  .argument('<url>', 'http(s) URL of the file')
  .option('--name <name>', 'path inside the mount (may contain "/" for folders); default: the URL\'s last segment')
  .option('-H, --header <header...>', 'request header the origin needs, as "Name: value" (repeatable)')
  .action((url: string, opts: { name?: string; header?: string[] }) => withAgent(async (client, json) => {
    const headers: Record<string, string> = {};
    for (const h of opts.header ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) fail(EXIT.usage, `header "${h}" is not of the form "Name: value"`, json);
      headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
    }
    const params = { url, ...(opts.name !== undefined ? { name: opts.name } : {}), ...(opts.header ? { headers } : {}) };
    const res = await client.call<AddFileResult>(Methods.addFile, params);
    if (json) return printJson(res);
    process.stdout.write(`${res.file.name}\n`);
  }));

program.command('ls')
  .alias('status')
  .description('list the files in the mount: size, bytes downloaded, state')
  .action(() => withAgent(async (client, json) => {
    const [files, status] = await Promise.all([client.call<FileSummary[]>(Methods.listFiles), client.call<AgentStatus>(Methods.status)]);
    if (json) return printJson(files);
    for (const p of status.problems) process.stderr.write(`fsctl: warning: ${p}\n`);
    const table = new Table({ head: ['name', 'size', 'downloaded', 'state', 'open', 'waiters'], style: { head: [], border: [], compact: true } });
    for (const f of files) {
      table.push([f.name, bytes(f.size), `${bytes(f.presentBytes)} (${percent(f.presentBytes, f.size)})`, f.lastError ? `${f.state}: ${f.lastError}` : f.state, f.openHandles, f.waiters]);
    }
    process.stdout.write(files.length === 0 ? 'no files; add one with: fsctl add URL\n' : table.toString() + '\n');
  }));

program.command('waiters')
  .description('list every read waiting for bytes: file, offset, length, time waited and left')
  .action(() => withAgent(async (client, json) => {
    const waiters = await client.call<WaiterSummary[]>(Methods.listWaiters);
    if (json) return printJson(waiters);
    if (waiters.length === 0) return void process.stdout.write('no reads are waiting\n');
    const table = new Table({ head: ['file', 'offset', 'length', 'waited', 'deadline in', 'download at'], style: { head: [], border: [], compact: true } });
    for (const w of waiters) table.push([w.file, w.offset, w.length, duration(w.waitedMs), duration(w.deadlineInMs), w.downloadPosition ?? '-']);
    process.stdout.write(table.toString() + '\n');
  }));

program.command('ping')
  .description('check that the agent answers')
  .action(() => withAgent(async (client, json) => {
    const pong = await client.call<string>(Methods.ping);
    if (json) return printJson({ ok: pong === 'pong' });
    process.stdout.write('the agent is running\n');
  }));

program.command('stop')
  .description('stop the agent: fail waiting reads, unmount, exit')
  .action(() => withAgent(async (client, json) => {
    const status = await client.call<AgentStatus>(Methods.status);
    await client.call(Methods.shutdown);
    if (json) return printJson({ stopping: true, pid: status.pid });
    process.stdout.write(`stopping the agent (pid ${status.pid}); ${status.mount} will be unmounted\n`);
  }));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
    process.exit(ok ? EXIT.ok : EXIT.usage);
  }
  process.stderr.write(`fsctl: ${(err as Error).message}\n`);
  process.exit(EXIT.refused);
});
