import { Methods, type FolderResult, type FolderSummary } from '../../agent/control/protocol';
import { displayUrl } from '../../agent/origin/origin-info';
import { AgentError, type AgentClient } from '../client';
import { checkedUrl, EXIT, fail, printJson, printTable, type Cli } from '../cli';
import { addFromList, folderReport, parseDuration, type FromFileResult } from '../folders';
import { duration, shown } from '../format';

export interface AddOptions {
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

export async function addFolder (
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
export function folderName (arg: string): string {
  return arg.replace(/\/+$/, '');
}

export async function addList (
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

/** refresh and folders: the folders added with --recursive. */
export function folderCommands (cli: Cli): void {
  const { program } = cli;
  program.command('refresh')
    .description('read a folder\'s index again: new files appear, files gone leave (once closed), changed ones are fetched anew')
    .argument('<folder>', 'a folder added with --recursive')
    .action((folder: string) => cli.withAgent(async (client, json) => {
      printFolderResult(await client.call<FolderResult>(Methods.refreshFolder, { folder: folderName(folder) }), json);
    }));

  program.command('folders')
    .description('the folders added with --recursive: URL, filters, files, last read')
    .action(() => cli.withAgent(async (client, json) => {
      const folders = await client.call<FolderSummary[]>(Methods.listFolders);
      if (json) return printJson(folders);
      printTable(['folder', 'files', 'url', 'filters', 'refresh', 'last read'], folders.map(f => {
        const depth = f.depth !== null ? [`depth ${f.depth}`] : [];
        const filters = [...f.include.map(g => `+${g}`), ...f.exclude.map(g => `-${g}`), ...depth].join(' ') || '-';
        const read = f.lastRefreshAt === null ? '-' : `${duration(Date.now() - f.lastRefreshAt)} ago`;
        const last = f.lastError !== null ? `failed: ${f.lastError}` : read;
        return [shown(f.name), f.files, f.url, filters, f.refreshEveryMs === null ? '-' : `every ${duration(f.refreshEveryMs)}`, last];
      }), 'no folders; add one with: fsctl add URL/ --recursive');
    }));
}
