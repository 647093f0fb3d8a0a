#!/usr/bin/env node
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import Table from 'cli-table3';
import { defaultPaths } from '../agent/paths';
import {
  Methods, Notifications,
  type AddFileResult, type AgentEvent, type AgentStatus, type FileDetails, type FileSummary, type SetUrlResult, type WaiterSummary,
  type FolderResult, type FolderSummary, type VerifyResult,
} from '../agent/control/protocol';
import { ConfigError, resolveConfig, describeConfig, type ConfigLine, type ResolvedConfig } from '../agent/config';
import type { CheckLine } from '../agent/platform/machine-checks';
import { logDir } from '../agent/log';
import { displayUrl } from '../agent/origin/origin-info';
import { AgentClient, AgentError, NoAgentError } from './client';
import { joinCommandWords, splitCommandWords } from './command-words';
import { runDoctor, doctorProbe } from './doctor';
import { addFromList, folderReport, parseDuration, type FromFileResult } from './folders';
import { bytes, colorEnabled, duration, percent, rate, shown, stateText } from './format';
import { showLogs } from './logs';
import { defaultKind, install, renderService, serviceState, uninstall, type ServiceKind } from './service';
import { statusHeader, watchStatus } from './watch';

/** fsctl's exit codes, as documented in the README. */
const EXIT = { ok: 0, refused: 1, usage: 2, noAgent: 3 } as const;

// The reader went away (`fsctl ls | head -1`): stop quietly, as every Unix tool does, rather than die with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
}

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

function fail (code: number, message: string, json: boolean, data?: unknown): never {
  if (json) process.stdout.write(JSON.stringify({ error: { message, ...(data !== undefined ? { data } : {}) } }) + '\n');
  else process.stderr.write(`fsctl: ${message}\n`);
  process.exit(code);
}

function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function table (head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [], compact: true } });
}

/**
 * A <file> argument: a name in the mount, or a path to a file inside the mount (absolute,
 * or relative to the current folder), as a user would drag it from a file manager.
 */
async function fileArg (client: AgentClient, arg: string): Promise<string> {
  if (path.isAbsolute(arg)) return arg;
  const { mount } = await client.call<AgentStatus>(Methods.status);
  const abs = path.resolve(arg);
  return abs.startsWith(mount + path.sep) ? abs : arg;
}

/** Declares a command that takes one <file> and calls one method with it. */
function fileCommand (name: string, description: string, method: string, say: (f: FileSummary) => string): void {
  program.command(name)
    .description(description)
    .argument('<file>', 'name in the mount, or a path inside the mount')
    .action((file: string) => withAgent(async (client, json) => {
      const res = await client.call<FileSummary>(method, { file: await fileArg(client, file) });
      if (json) return printJson(res);
      process.stdout.write(say(res) + '\n');
    }));
}

/** -H values as a header object, or a usage error naming the bad one. */
function parseHeaders (raw: string[], json: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of raw) {
    const i = h.indexOf(':');
    if (i <= 0) fail(EXIT.usage, `header "${h}" is not of the form "Name: value"`, json);
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return headers;
}

/** When the URL in use stops working, as `fsctl info` shows it. */
/** How long a stalled file has had nothing, as the state cell's suffix; '' for any other state. */
function stalledFor (f: FileSummary): string {
  return f.stalled === null ? '' : ` (nothing for ${duration(Math.max(Date.now() - f.stalled.since, 0))})`;
}

function expiryText (f: FileSummary): string {
  const at = f.urlExpiresAt;
  if (at === null && f.source === 'url') return '- (the URL does not say)';
  if (at === null && f.urlRefreshes === 0) return '- (no link minted yet)';
  if (at === null) return '- (the link it gave does not say; a new one is minted when it is refused)';
  const left = at - Date.now();
  const late = f.source === 'command' ? 'ago: the command is run again when needed' : 'ago: give a new one with fsctl set-url';
  return `${new Date(at).toISOString()} (${left > 0 ? `in ${duration(left)}` : `${duration(-left)} ${late}`})`;
}

/** The state cell's suffix in `fsctl ls`: how the file's content checked out, when it has a digest. */
function verificationNote (f: FileSummary): string {
  const v = f.verification;
  if (v === null || v.state === 'pending') return '';
  return v.state === 'verified' ? `, verified (${v.algorithm})` : `, did not match its ${v.algorithm}`;
}

/** `fsctl info`'s content row. */
function verificationText (f: FileSummary): string {
  const v = f.verification;
  if (v === null) return '- (no digest: the origin states none; fsctl add --sha256 gives one)';
  const said = `${v.algorithm} ${v.expected}, from ${v.source === 'user' ? '--sha256' : v.source}`;
  if (v.state === 'verified') return `verified (${said})`;
  if (v.state === 'failed') return `did not match twice (${said}; the last copy hashed to ${v.actual ?? '?'}); its bytes were dropped`;
  return `checked once complete (${said})` + (v.actual !== null ? `; a copy that hashed to ${v.actual} was dropped` : '');
}

/** Links pasted by hand that lapse within a day, of files not yet whole: the user must act, so `fsctl ls` says so. */
function linkNote (f: FileSummary): string | null {
  if (f.source !== 'url' || f.urlExpiresAt === null || f.state === 'complete') return null;
  const left = f.urlExpiresAt - Date.now();
  if (left > 86_400_000) return null;
  const when = left > 0 ? `expires in ${duration(left)}` : `expired ${duration(-left)} ago`;
  return `${shown(f.name)}: its URL ${when}; give a new one with fsctl set-url (or a --url-command)`;
}

/**
 * A repeatable option's values. Not commander's variadic `<value...>`, which takes every word
 * after it: `fsctl add -H "X: 1" URL` would read the URL as a second header.
 */
function repeated (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A URL the agent can fetch, or a usage error (exit 2) before anything is asked of it. */
function checkedUrl (url: string, json: boolean): string {
  let parsed: URL | null = null;
  try { parsed = new URL(url); } catch { /* below */ }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    fail(EXIT.usage, `${JSON.stringify(url)} is not an http:// or https:// URL`, json);
  }
  return url;
}

/** --url-command's line as the words the agent will run, or a usage error. */
function commandArg (line: string | undefined, json: boolean): { urlCommand: string[] } | Record<string, never> {
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

const URL_COMMAND_HELP = 'a command that prints a fresh URL, or JSON {"url", "headers", "expiresIn"}, whenever the file needs one ' +
  '(for links and tokens that expire); run without a shell, with FUSESTREAM_FILE and FUSESTREAM_URL set';

program.command('add')
  .description('add a remote file (or with --recursive, a folder; with --from-file, a list of files) to the mount')
  .argument('[url]', 'http(s) URL of the file or folder (may be left out with --url-command and --name, or --from-file)')
  .option('--name <name>', 'path inside the mount (may contain "/" for folders); default: the URL\'s last segment')
  .option('-H, --header <header>', 'request header the origin needs, as "Name: value" (repeat -H for more)', repeated)
  .option('--url-command <command>', URL_COMMAND_HELP)
  .option('-r, --recursive', 'add every file of the folder at URL, read from its index page (nginx, Apache, python http.server)')
  .option('--include <glob>', 'with --recursive: only files matching this glob ("*.mp4", "season 1/**"; repeat for more)', repeated)
  .option('--exclude <glob>', 'with --recursive: no file matching this glob (repeat for more)', repeated)
  .option('--depth <n>', 'with --recursive: subfolder levels to enter (0: the folder\'s own files); default: all')
  .option('--refresh-every <duration>', 'with --recursive: read the index again this often ("10m", "1h"; at least 10 s)')
  .option('--from-file <list>', 'add every "URL [NAME]" line of this file ("-": stdin); blank lines and # comments are skipped')
  .option('--sha256 <hex>', 'the file\'s sha-256: its bytes are checked against it once downloaded (over any digest the origin states)')
  .action((url: string | undefined, opts: AddOptions) => withAgent(async (client, json) => {
    const headers = opts.header ? parseHeaders(opts.header, json) : undefined;
    if (opts.sha256 !== undefined && (opts.fromFile !== undefined || opts.recursive === true)) {
      fail(EXIT.usage, '--sha256 is one file\'s digest; it goes with neither --recursive nor --from-file', json);
    }
    if (opts.fromFile !== undefined) return await addList(client, opts.fromFile, url, headers, json);
    if (opts.recursive === true) return await addFolder(client, url, opts, headers, json);
    for (const o of ['include', 'exclude', 'depth', 'refreshEvery'] as const) {
      if (opts[o] !== undefined) fail(EXIT.usage, `--${o === 'refreshEvery' ? 'refresh-every' : o} goes with --recursive`, json);
    }
    if (url === undefined && opts.urlCommand === undefined) fail(EXIT.usage, 'give a URL, a --url-command, or both', json);
    if (url !== undefined) checkedUrl(url, json);
    if (opts.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(opts.sha256)) {
      fail(EXIT.usage, `--sha256 takes the 64 hex digits of a sha-256 digest, not ${JSON.stringify(opts.sha256)}`, json);
    }
    if (url === undefined && opts.name === undefined) fail(EXIT.usage, 'a file added by --url-command alone needs --name', json);
    const params = {
      ...(url !== undefined ? { url } : {}),
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      ...(headers !== undefined ? { headers } : {}),
      ...commandArg(opts.urlCommand, json),
      ...(opts.sha256 !== undefined ? { sha256: opts.sha256 } : {}),
    };
    const res = await client.call<AddFileResult>(Methods.addFile, params);
    if (json) return printJson(res);
    process.stdout.write(res.added ? `${shown(res.file.name)}\n` : `${shown(res.file.name)} (already in the mount from this source)\n`);
  }));

interface AddOptions {
  name?: string;
  header?: string[];
  urlCommand?: string;
  recursive?: boolean;
  include?: string[];
  exclude?: string[];
  depth?: string;
  refreshEvery?: string;
  fromFile?: string;
  sha256?: string;
}

async function addFolder (
  client: AgentClient, url: string | undefined, opts: AddOptions, headers: Record<string, string> | undefined, json: boolean
): Promise<void> {
  if (url === undefined) fail(EXIT.usage, '--recursive needs the folder\'s URL', json);
  checkedUrl(url, json);
  if (opts.urlCommand !== undefined) fail(EXIT.usage, '--url-command adds one file; it does not go with --recursive', json);
  const depth = opts.depth === undefined ? undefined : Number(opts.depth);
  if (depth !== undefined && !(Number.isSafeInteger(depth) && depth >= 0)) {
    fail(EXIT.usage, '--depth takes a whole number, 0 or more', json);
  }
  const refreshEveryMs = opts.refreshEvery === undefined ? undefined : parseDuration(opts.refreshEvery);
  if (refreshEveryMs === null) {
    fail(EXIT.usage, `--refresh-every takes a duration such as 90s, 10m or 1h, not "${opts.refreshEvery}"`, json);
  }
  const res = await client.call<FolderResult>(Methods.addFolder, {
    url,
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    ...(headers !== undefined ? { headers } : {}),
    ...(opts.include !== undefined ? { include: opts.include } : {}),
    ...(opts.exclude !== undefined ? { exclude: opts.exclude } : {}),
    ...(depth !== undefined ? { depth } : {}),
    ...(refreshEveryMs !== undefined ? { refreshEveryMs } : {}),
  });
  printFolderResult(res, json);
}

/** What adding or reading a folder did: as JSON, or in words with exit status 1 if any file failed. */
function printFolderResult (res: FolderResult, json: boolean): void {
  if (json) return printJson(res);
  process.stdout.write(folderReport(res));
  if (res.failed.length > 0) process.exitCode = EXIT.refused;
}

/** A folder as the agent names it: "shows/" and "shows" are the same. */
function folderName (arg: string): string {
  return arg.replace(/\/+$/, '');
}

async function addList (
  client: AgentClient, list: string, url: string | undefined, headers: Record<string, string> | undefined, json: boolean
): Promise<void> {
  if (url !== undefined) fail(EXIT.usage, '--from-file takes its URLs from the list; give no URL besides', json);
  let res: FromFileResult;
  try {
    res = await addFromList(client, list, headers);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    return fail(EXIT.usage, `cannot read ${list}: ${(err as Error).message}`, json);
  }
  if (json) printJson(res);
  else {
    for (const f of res.failed) process.stdout.write(`failed   line ${f.line}${f.url !== '' ? ` ${displayUrl(f.url)}` : ''}: ${f.error}\n`);
    process.stdout.write(`${res.added.length} added, ${res.already.length} already in the mount, ${res.failed.length} failed\n`);
  }
  if (res.failed.length > 0) process.exitCode = EXIT.refused;
}

program.command('refresh')
  .description('read a folder\'s index again: new files appear, files gone leave (once closed), changed ones are fetched anew')
  .argument('<folder>', 'a folder added with --recursive')
  .action((folder: string) => withAgent(async (client, json) => {
    printFolderResult(await client.call<FolderResult>(Methods.refreshFolder, { folder: folderName(folder) }), json);
  }));

program.command('folders')
  .description('the folders added with --recursive: URL, filters, files, last read')
  .action(() => withAgent(async (client, json) => {
    const folders = await client.call<FolderSummary[]>(Methods.listFolders);
    if (json) return printJson(folders);
    if (folders.length === 0) { process.stdout.write('no folders; add one with: fsctl add URL/ --recursive\n'); return; }
    const t = table(['folder', 'files', 'url', 'filters', 'refresh', 'last read']);
    for (const f of folders) {
      const depth = f.depth !== null ? [`depth ${f.depth}`] : [];
      const filters = [...f.include.map(g => `+${g}`), ...f.exclude.map(g => `-${g}`), ...depth].join(' ') || '-';
      const read = f.lastRefreshAt === null ? '-' : `${duration(Date.now() - f.lastRefreshAt)} ago`;
      const last = f.lastError !== null ? `failed: ${f.lastError}` : read;
      t.push([shown(f.name), f.files, f.url, filters, f.refreshEveryMs === null ? '-' : `every ${duration(f.refreshEveryMs)}`, last]);
    }
    process.stdout.write(t.toString() + '\n');
  }));

program.command('set-url')
  .description('give a file a new URL (a link that expired, say) or url-command; bytes on disk stay if it serves the same version')
  .argument('<file>', 'name in the mount, or a path inside the mount')
  .argument('[url]', 'the new http(s) URL (or give --url-command)')
  .option('-H, --header <header>', 'replace the file\'s request headers, "Name: value" (repeat for more); without -H they stay', repeated)
  .option('--url-command <command>', URL_COMMAND_HELP)
  .action((file: string, url: string | undefined, opts: { header?: string[]; urlCommand?: string }) => withAgent(async (client, json) => {
    if ((url === undefined) === (opts.urlCommand === undefined)) fail(EXIT.usage, 'give either a new URL or --url-command', json);
    if (url !== undefined) checkedUrl(url, json);
    const params = {
      file: await fileArg(client, file),
      ...(url !== undefined ? { url } : {}),
      ...(opts.header ? { headers: parseHeaders(opts.header, json) } : {}),
      ...commandArg(opts.urlCommand, json),
    };
    const res = await client.call<SetUrlResult>(Methods.setUrl, params);
    if (json) return printJson(res);
    const what = url !== undefined ? 'new URL' : 'new url-command';
    process.stdout.write(res.keptBytes
      ? `${shown(res.file.name)}: ${what}; the same version, so its ${bytes(res.file.presentBytes)} on disk were kept\n`
      : `${shown(res.file.name)}: ${what}; it serves another version, so the bytes on disk were dropped\n`);
  }));

program.command('rm')
  .description('remove a file (or a folder added with --recursive, with its files) and its cached bytes (programs reading it get EIO)')
  .argument('<file>', 'name in the mount, or a path inside the mount')
  .action((file: string) => withAgent(async (client, json) => {
    const folders = await client.call<FolderSummary[]>(Methods.listFolders);
    const folder = folders.find(f => f.name === folderName(file));
    if (folder !== undefined) {
      const gone = await client.call<{ removed: string; files: number }>(Methods.removeFolder, { folder: folder.name });
      if (json) return printJson(gone);
      process.stdout.write(`removed the folder ${gone.removed} and its ${gone.files} file(s)\n`);
      return;
    }
    const res = await client.call<{ removed: string }>(Methods.removeFile, { file: await fileArg(client, file) });
    if (json) return printJson(res);
    process.stdout.write(`removed ${res.removed}\n`);
  }));

program.command('status')
  .alias('ls')
  .description('the agent and every file (or those under FOLDER): size, progress, rate, state, open handles, waiting reads')
  .argument('[folder]', 'show only the files under this folder of the mount')
  .option('-w, --watch', 'live view with progress bars, fitted to the terminal, until Ctrl-C')
  .action((folder: string | undefined, opts: { watch?: boolean }) => withAgent(async (client, json) => {
    const under = folder === undefined ? undefined : folderName(folder);
    if (opts.watch === true) {
      await watchStatus(client, json, under).catch(() => process.exit(EXIT.noAgent)); // it said why
      return;
    }
    const [all, status] = await Promise.all([client.call<FileSummary[]>(Methods.listFiles), client.call<AgentStatus>(Methods.status)]);
    const files = under === undefined ? all : all.filter(f => f.name.startsWith(`${under}/`));
    if (json) return printJson({ agent: status, files });
    for (const p of status.problems) process.stderr.write(`fsctl: warning: ${p}\n`);
    const color = colorEnabled();
    process.stdout.write(statusHeader(status) + '\n');
    if (under !== undefined && files.length === 0) fail(EXIT.refused, `no files under ${under}/ in the mount`, json);
    if (files.length === 0) { process.stdout.write('no files; add one with: fsctl add URL\n'); return; }
    const t = table(['name', 'size', 'progress', 'rate', 'state', 'open', 'waiters']);
    for (const f of files) {
      const row = [shown(f.name) + (f.pinned ? ' (pinned)' : ''), bytes(f.size), percent(f.presentBytes, f.size), rate(f.bytesPerSecond)];
      t.push([...row, stateText(f.state, color) + stalledFor(f) + verificationNote(f), f.openHandles, f.waiters]);
    }
    process.stdout.write(t.toString() + '\n');
    // The table stays narrow: errors are one `fsctl info` away.
    const failed = files.filter(f => f.state === 'error');
    if (failed.length > 0) process.stdout.write(`${failed.length} failed; the reason: fsctl info ${shown(failed[0].name)}\n`);
    for (const f of files) {
      const note = linkNote(f);
      if (note !== null) process.stdout.write(note + '\n');
    }
  }));

program.command('info')
  .description('one file in detail: ranges on disk, rate, ETA, origin validators, last error')
  .argument('<file>', 'name in the mount, or a path inside the mount')
  .action((file: string) => withAgent(async (client, json) => {
    const f = await client.call<FileDetails>(Methods.getFile, { file: await fileArg(client, file) });
    if (json) return printJson(f);
    const lastError = f.lastError ?? (f.retrying !== null ? `retrying after: ${f.retrying}` : '-');
    const rows: Array<[string, string]> = [
      ['name', shown(f.name)],
      ['url', f.url],
      ...(f.urlCommand === null
        ? []
        : [
            ['url command', joinCommandWords(f.urlCommand.argv)] as [string, string],
            ['url refreshes', String(f.urlCommand.refreshes)] as [string, string],
            ['command error', f.urlCommand.error ?? '-'] as [string, string],
          ]),
      ['url expires', expiryText(f)],
      ['size', `${bytes(f.size)} (${f.size} bytes)`],
      ['downloaded', `${bytes(f.presentBytes)} (${percent(f.presentBytes, f.size)}) in ${f.ranges.length} range(s)`],
      ['state', stateText(f.state, colorEnabled()) + (f.pinned ? ', pinned' : '') +
        (f.stalled !== null ? ` since ${new Date(f.stalled.since).toISOString()}${stalledFor(f)}: ${f.stalled.cause}` : '')],
      ['rate', rate(f.bytesPerSecond)],
      ['eta', f.etaSeconds === null ? '-' : duration(f.etaSeconds * 1000)],
      ['download at', f.downloadPosition === null ? '-' : String(f.downloadPosition)],
      ['open handles', String(f.openHandles)],
      ['waiting reads', String(f.waiters)],
      ['last error', lastError],
      ['etag', f.origin.etag ?? '-'],
      ['last-modified', f.origin.lastModified ?? '-'],
      ['range support', f.origin.acceptRanges ? 'yes' : 'no'],
      ['content', verificationText(f)],
      ['added', f.addedAt],
      ['ranges', f.ranges.slice(0, 8).map(([s, e]) => `${s}-${e}`).join(' ') + (f.ranges.length > 8 ? ' …' : '')],
    ];
    process.stdout.write(rows.map(([k, v]) => `${k.padEnd(14)} ${v}`).join('\n') + '\n');
  }));

/** One event as `fsctl events` prints it, after its time and file. */
function eventText (e: AgentEvent, color: boolean): string {
  switch (e.type) {
    case 'progress':
      return `${percent(e.presentBytes, e.size)} (${bytes(e.presentBytes)} of ${bytes(e.size)}) at ${rate(e.bytesPerSecond)}`;
    case 'state': return `now ${stateText(e.state, color)}${e.error ? `: ${e.error}` : ''}`;
    case 'retry': {
      const streak = e.withoutProgress > 1 ? `, ${e.withoutProgress} in a row without a byte` : '';
      return `attempt ${e.attempt} failed (${e.error}${streak}); retrying in ${duration(e.delayMs)}`;
    }
    case 'waiters': return `${e.count} read(s) waiting`;
    case 'changed': return `changed at the origin (now ${bytes(e.size)}, ETag ${e.etag ?? '-'}): old bytes dropped`;
    case 'url-command': return e.ok
      ? `url-command gave a fresh URL${e.expiresAt !== null ? ` (expires ${new Date(e.expiresAt).toISOString()})` : ''}`
      : `url-command failed: ${e.error ?? ''}`;
    case 'verified': return e.ok
      ? `verified (${e.algorithm} ${e.actual})`
      : `did not match its ${e.algorithm} (expected ${e.expected}, got ${e.actual}): bytes dropped`;
    default: return e.type;
  }
}

program.command('verify')
  .description('hash a complete file on disk again and check it against its digest; a mismatch drops its bytes and fetches them anew')
  .argument('<file>', 'name in the mount, or a path inside the mount')
  .action((file: string) => withAgent(async (client, json) => {
    const r = await client.call<VerifyResult>(Methods.verify, { file: await fileArg(client, file) });
    if (!r.ok) process.exitCode = EXIT.refused;
    if (json) return printJson(r);
    process.stdout.write(r.ok
      ? `${shown(r.file)}: verified (${r.algorithm} ${r.actual})\n`
      : `${shown(r.file)}: does not match its ${r.algorithm} (expected ${r.expected}, got ${r.actual}); ` +
        'its bytes were dropped and are fetched again\n');
  }));

fileCommand('cancel', 'stop a file\'s download; its waiting reads fail with EIO at once', Methods.cancel, f => `cancelled ${f.name}`);
fileCommand('resume', 'download a cancelled or failed file again, now', Methods.resume, f => `resumed ${f.name} (${f.state})`);
fileCommand('pin', 'keep a file\'s cached bytes: never evicted', Methods.pin, f => `pinned ${f.name}`);
fileCommand('unpin', 'let a file\'s cached bytes be evicted again', Methods.unpin, f => `unpinned ${f.name}`);
fileCommand(
  'prefetch',
  'download the whole file now, with no reader',
  Methods.prefetch,
  f => `prefetching ${shown(f.name)} (${percent(f.presentBytes, f.size)} present)`
);

program.command('evict')
  .description('drop cached bytes: of one file, or of every file neither open, pinned nor downloading')
  .argument('[file]', 'name in the mount, or a path inside the mount')
  .option('--all', 'every file that is neither open, pinned nor downloading')
  .option('--force', 'drop a pinned file\'s bytes too')
  .action((file: string | undefined, opts: { all?: boolean; force?: boolean }) => withAgent(async (client, json) => {
    if ((file === undefined) === (opts.all !== true)) fail(EXIT.usage, 'give a file, or --all', json);
    if (opts.all === true && opts.force === true) fail(EXIT.usage, '--force goes with one file, not --all', json);
    const params = opts.all === true
      ? { all: true }
      : { file: await fileArg(client, file!), ...(opts.force === true ? { force: true } : {}) };
    const res = await client.call<{ freedBytes: number }>(Methods.evict, params);
    if (json) return printJson(res);
    process.stdout.write(`freed ${bytes(res.freedBytes)}\n`);
  }));

/** The process that waits, as `fsctl waiters` shows it: "4242 dd". */
function readerText (w: WaiterSummary): string {
  if (w.pid === null) return '-';
  return w.command !== null ? `${w.pid} ${w.command}` : String(w.pid);
}

program.command('waiters')
  .description('every read waiting for bytes: file, offset, length, time waited and left, and the process that reads')
  .action(() => withAgent(async (client, json) => {
    const waiters = await client.call<WaiterSummary[]>(Methods.listWaiters);
    if (json) return printJson(waiters);
    if (waiters.length === 0) { process.stdout.write('no reads are waiting\n'); return; }
    const t = table(['file', 'offset', 'length', 'waited', 'fails in', 'download at', 'reader']);
    for (const w of waiters) {
      t.push(
        [shown(w.file), w.offset, w.length, duration(w.waitedMs), duration(w.deadlineInMs), w.downloadPosition ?? '-', readerText(w)]
      );
    }
    process.stdout.write(t.toString() + '\n');
  }));

program.command('events')
  .description('stream progress, state changes, stalls and errors until Ctrl-C')
  .action(() => withAgent(async (client, json) => {
    const color = colorEnabled();
    client.onNotification = (method, params) => {
      if (method !== Notifications.event) return;
      const e = params as AgentEvent;
      if (json) { process.stdout.write(JSON.stringify(e) + '\n'); return; }
      const time = new Date(e.at).toISOString().slice(11, 23);
      const what = eventText(e, color);
      process.stdout.write(`${time} ${shown(e.file)} ${e.type === 'progress' ? 'progress' : ''} ${what}\n`.replace(/ {2,}/g, ' '));
    };
    await client.call(Methods.subscribe);
    process.stderr.write('fsctl: watching events (Ctrl-C to stop)\n');
    await new Promise<void>(resolve => {
      process.once('SIGINT', () => resolve());
      client.onClose(() => resolve());
    });
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

/** The configuration an agent started now would use (flags aside): for commands that work without one. */
function localConfig (json: boolean): ReturnType<typeof resolveConfig> {
  try {
    return resolveConfig({}, process.env, defaultPaths().configFile, false);
  } catch (err) {
    if (err instanceof ConfigError) fail(EXIT.refused, `invalid configuration: ${err.message}`, json);
    throw err;
  }
}

/** Asks the agent when one runs; null when none answers. */
async function tryAgent<T> (method: string): Promise<T | null> {
  try {
    const client = await AgentClient.connect(globals().socket);
    try { return await client.call<T>(method); } finally { client.close(); }
  } catch (err) {
    if (err instanceof NoAgentError) return null;
    throw err;
  }
}

program.command('config')
  .description('the effective configuration, and where each value came from (flag, env, config file, default)')
  .action(async () => {
    const { json } = globals();
    const fromAgent = await tryAgent<{ configFile: string | null; options: ConfigLine[] }>(Methods.config);
    const local = fromAgent === null ? localConfig(json) : null;
    const result = fromAgent ?? { configFile: local!.configFile, options: describeConfig(local!) };
    if (json) return printJson({ agentRunning: fromAgent !== null, ...result });
    if (fromAgent === null) process.stdout.write('no agent is running: this is what one started now would use\n');
    process.stdout.write(`config file: ${result.configFile ?? `none (${defaultPaths().configFile} does not exist)`}\n`);
    const t = table(['setting', 'value', 'from', 'environment variable']);
    for (const o of result.options) t.push([o.key, o.text, o.source, o.env]);
    process.stdout.write(t.toString() + '\n');
    for (const o of result.options) if (o.note !== null) process.stdout.write(`${o.key}: ${o.note}\n`);
  });

program.command('logs')
  .description('the agent\'s log, readable (pretty on a terminal; --json for raw lines)')
  .option('-f, --follow', 'keep printing new lines until Ctrl-C')
  .option('-n, --lines <n>', 'how many past lines to print', '50')
  .action(async (opts: { follow?: boolean; lines: string }) => {
    const { json } = globals();
    const status = await tryAgent<AgentStatus>(Methods.status);
    const dir = status?.logDir ?? logDir(localConfig(json).config.stateDir);
    const n = Number(opts.lines);
    if (!Number.isInteger(n) || n < 0) fail(EXIT.usage, '--lines takes a whole number', json);
    try {
      await showLogs(dir, n, opts.follow === true, json);
    } catch (err) {
      fail(EXIT.refused, (err as Error).message, json);
    }
  });

program.command('doctor')
  .description('checks everything a mount needs, one line each with the fix (works with no agent running); exit 0 when a mount can work')
  .action(async () => {
    const { json } = globals();
    let config: ResolvedConfig | ConfigError;
    try {
      config = resolveConfig({}, process.env, defaultPaths().configFile, false);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      config = err;
    }
    const agent = await tryAgent<AgentStatus>(Methods.status);
    const service = config instanceof ConfigError
      ? null
      : await renderService({
        kind: defaultKind(), home: process.env.HOME ?? '', env: process.env, mount: config.config.mount, stateDir: config.config.stateDir,
      });
    const checks = await runDoctor(process.platform, doctorProbe, { config, agent, service });
    const canMount = checks.every(c => c.status !== 'fail');
    if (json) printJson({ canMount, checks });
    else {
      const color = colorEnabled();
      const mark = (c: CheckLine): string => {
        const word = c.status === 'ok' ? 'ok  ' : c.status === 'warn' ? 'warn' : 'FAIL';
        return color ? `\x1b[${c.status === 'ok' ? 32 : c.status === 'warn' ? 33 : 31}m${word}\x1b[0m` : word;
      };
      for (const c of checks) process.stdout.write(`${mark(c)}  ${c.what}: ${c.detail}\n`);
      process.stdout.write(canMount ? 'a mount can work here\n' : 'a mount cannot work here until the FAIL lines are fixed\n');
    }
    process.exit(canMount ? EXIT.ok : EXIT.refused);
  });

const service = program.command('service').description('start the agent at login: a systemd user unit (Linux) or a LaunchAgent (macOS)');
function serviceCommand (name: 'install' | 'uninstall' | 'status', description: string): Command {
  return service.command(name)
    .description(description)
    .addOption(new Option('--kind <kind>', 'which service manager').choices(['systemd', 'launchd']).default(defaultKind()))
    .option('--files-only', 'only write or remove the file; do not call systemctl or launchctl');
}
async function plan (kind: ServiceKind, json: boolean): Promise<Awaited<ReturnType<typeof renderService>>> {
  const { config } = localConfig(json);
  return renderService({ kind, home: process.env.HOME ?? '', env: process.env, mount: config.mount, stateDir: config.stateDir });
}
serviceCommand('install', 'render the service file for this machine, write it, enable and start it')
  .option('--dry-run', 'print the rendered file instead of installing it')
  .action(async (opts: { kind: ServiceKind; filesOnly?: boolean; dryRun?: boolean }) => {
    const { json } = globals();
    const p = await plan(opts.kind, json);
    if (opts.dryRun === true) { process.stdout.write(json ? JSON.stringify(p) + '\n' : p.content); return; }
    const steps = await install(p, opts.filesOnly === true);
    const failed = steps.find(s => !s.ok);
    if (json) printJson({ installed: p.target, steps });
    else {
      process.stdout.write(
      `wrote ${p.target}\n` + (failed ? '' : opts.filesOnly ? '' : 'the agent is enabled and started; it will start at every login\n')
      );
    }
    if (failed) fail(EXIT.refused, `the file is written, but starting it failed: ${failed.detail}`, json);
  });
serviceCommand('uninstall', 'stop and disable the service (the agent unmounts), and remove the file')
  .action(async (opts: { kind: ServiceKind; filesOnly?: boolean }) => {
    const { json } = globals();
    const p = await plan(opts.kind, json);
    const steps = await uninstall(p, opts.filesOnly === true);
    if (opts.filesOnly !== true) await tryAgent(Methods.shutdown); // an agent started by hand stops too
    if (json) return printJson({ removed: p.target, steps });
    process.stdout.write(`removed ${p.target}\n`);
    for (const s of steps.filter(x => !x.ok)) process.stderr.write(`fsctl: note: ${s.detail}\n`);
  });
serviceCommand('status', 'whether the service file is installed, what the service manager says, whether the agent answers')
  .action(async (opts: { kind: ServiceKind }) => {
    const { json } = globals();
    const p = await plan(opts.kind, json);
    const state = await serviceState(p);
    const agent = await tryAgent<AgentStatus>(Methods.status);
    if (json) return printJson({ ...state, agentRunning: agent !== null, pid: agent?.pid ?? null });
    const file = state.installed ? `installed at ${state.file}` : `not installed (would go to ${state.file})`;
    const running = agent !== null ? `running, pid ${agent.pid}, mount ${agent.mount}` : 'not running';
    process.stdout.write(`${opts.kind} service: ${file}\nservice manager says: ${state.manager}\nagent: ${running}\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
    process.exit(ok ? EXIT.ok : EXIT.usage);
  }
  process.stderr.write(`fsctl: ${(err as Error).message}\n`);
  process.exit(EXIT.refused);
});
