import path from 'node:path';
import { Command, Option } from 'commander';
import Table from 'cli-table3';
import { defaultPaths } from '../agent/paths';
import { Methods, type AgentStatus } from '../agent/control/protocol';
import { ConfigError, resolveConfig } from '../agent/config';
import { AgentClient, AgentError, NoAgentError } from './client';
import { splitCommandWords } from './command-words';

/** fsctl's exit codes, as documented in the README. */
export const EXIT = { ok: 0, refused: 1, usage: 2, noAgent: 3 } as const;

interface GlobalOptions { socket: string; json: boolean }

/** fsctl's command line, and what every command shares: its global options and the way to the agent. */
export class Cli {
  readonly program: Command;

  constructor () {
    this.program = new Command('fsctl')
      .description('Controls a running fusestream agent over its socket.')
      .addOption(new Option('--socket <path>', 'the agent\'s control socket').env('FUSESTREAM_SOCKET').default(defaultPaths().socket))
      .option('--json', 'print machine-readable JSON only', false)
      .showHelpAfterError()
      .exitOverride();
  }

  get options (): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  /** Connects, runs one command's calls, prints, and turns failures into exit codes. */
  async withAgent (run: (client: AgentClient, json: boolean) => Promise<void>): Promise<void> {
    const { socket, json } = this.options;
    let client: AgentClient;
    try {
      client = await AgentClient.connect(socket);
    } catch (err) {
      if (err instanceof NoAgentError) {
        // `npm link` (a clone) and `npm install -g` both put the agent's command on PATH.
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

  /** Asks the agent when one runs; null when none answers. */
  async tryAgent<T> (method: string): Promise<T | null> {
    try {
      const client = await AgentClient.connect(this.options.socket);
      try { return await client.call<T>(method); } finally { client.close(); }
    } catch (err) {
      if (err instanceof NoAgentError) return null;
      throw err;
    }
  }

  /** The configuration an agent started now would use (flags aside): for commands that work without one. */
  localConfig (json: boolean): ReturnType<typeof resolveConfig> {
    try {
      return resolveConfig({}, process.env, defaultPaths().configFile, false);
    } catch (err) {
      if (err instanceof ConfigError) fail(EXIT.refused, `invalid configuration: ${err.message}`, json);
      throw err;
    }
  }
}

export function fail (code: number, message: string, json: boolean, data?: unknown): never {
  if (json) process.stdout.write(JSON.stringify({ error: { message, ...(data !== undefined ? { data } : {}) } }) + '\n');
  else process.stderr.write(`fsctl: ${message}\n`);
  process.exit(code);
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Prints `rows` under `head` as a plain table, or the line `empty` (if given) when there are none. */
export function printTable (head: string[], rows: Array<Array<string | number>>, empty?: string): void {
  if (rows.length === 0 && empty !== undefined) {
    process.stdout.write(empty + '\n');
    return;
  }
  const t = new Table({ head, style: { head: [], border: [], compact: true } });
  t.push(...rows);
  process.stdout.write(t.toString() + '\n');
}

/**
 * A <file> argument: a name in the mount, or a path to a file inside the mount (absolute,
 * or relative to the current folder), as a user would drag it from a file manager.
 */
export async function fileArg (client: AgentClient, arg: string): Promise<string> {
  if (path.isAbsolute(arg)) return arg;
  const { mount } = await client.call<AgentStatus>(Methods.status);
  const abs = path.resolve(arg);
  return abs.startsWith(mount + path.sep) ? abs : arg;
}

/** -H values as a header object, or a usage error naming the bad one. */
export function parseHeaders (raw: string[], json: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of raw) {
    const i = h.indexOf(':');
    if (i <= 0) fail(EXIT.usage, `header "${h}" is not of the form "Name: value"`, json);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return headers;
}

/**
 * A repeatable option's values. Not commander's variadic `<value...>`, which takes every word
 * after it: `fsctl add -H "X: 1" URL` would read the URL as a second header.
 */
export function repeated (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A URL the agent can fetch, or a usage error (exit 2) before anything is asked of it. */
export function checkedUrl (url: string, json: boolean): string {
  let parsed: URL | null = null;
  try { parsed = new URL(url); } catch { /* below */ }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    fail(EXIT.usage, `${JSON.stringify(url)} is not an http:// or https:// URL`, json);
  }
  return url;
}

/** --url-command's line as the words the agent will run, or a usage error. */
export function commandArg (line: string | undefined, json: boolean): { urlCommand: string[] } | Record<string, never> {
  if (line === undefined) return {};
  let words: string[] = [];
  try {
    words = splitCommandWords(line);
  } catch (err) {
    fail(EXIT.usage, `--url-command: ${(err as Error).message}`, json);
  }
  if (words.length === 0) fail(EXIT.usage, '--url-command is empty', json);
  return { urlCommand: words };
}

export const URL_COMMAND_HELP = 'a command that prints a fresh URL, or JSON {"url", "headers", "expiresIn"}, whenever the file needs one ' +
  '(for links and tokens that expire); run without a shell, with FUSESTREAM_FILE and FUSESTREAM_URL set';
