import {
  Methods, type AddFileResult, type AgentStatus, type FileDetails, type FileSummary, type FolderSummary, type SetUrlResult,
  type VerifyResult, type WaiterSummary,
} from '../../agent/control/protocol';
import {
  checkedUrl, commandArg, EXIT, fail, fileArg, parseHeaders, printJson, printTable, repeated, URL_COMMAND_HELP, type Cli,
} from '../cli';
import { joinCommandWords } from '../command-words';
import { expiryText, linkNote, stalledFor, verificationNote, verificationText } from '../file-text';
import { bytes, colorEnabled, duration, percent, rate, shown, stateText } from '../format';
import { statusHeader, watchStatus } from '../watch';
import { addFolder, addList, folderName, type AddOptions } from './folders';

/** The process that waits, as `fsctl waiters` shows it: "4242 dd". */
function readerText (w: WaiterSummary): string {
  if (w.pid === null) return '-';
  return w.command !== null ? `${w.pid} ${w.command}` : String(w.pid);
}

interface SetUrlOptions { header?: string[]; urlCommand?: string }

/** A paused file in a state column: reads are still served, which is what a user wonders. */
function pausedNote (f: FileSummary): string {
  return f.paused ? ', paused (reads still served)' : '';
}

/** Every command about files: add, set-url, rm, status, info, verify, cancel, pause, resume, prefetch, pin, unpin, evict, waiters. */
export function fileCommands (cli: Cli): void {
  const { program } = cli;

  /** Declares a command that takes one <file> and calls one method with it. */
  const fileCommand = (name: string, description: string, method: string, say: (f: FileSummary) => string): void => {
    program.command(name)
      .description(description)
      .argument('<file>', 'name in the mount, or a path inside the mount')
      .action((file: string) => cli.withAgent(async (client, json) => {
        const res = await client.call<FileSummary>(method, { file: await fileArg(client, file) });
        if (json) return printJson(res);
        process.stdout.write(say(res) + '\n');
      }));
  };

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
    .action((url: string | undefined, opts: AddOptions) => cli.withAgent(async (client, json) => {
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

  program.command('set-url')
    .description('give a file a new URL (a link that expired, say) or url-command; bytes on disk stay if it serves the same version')
    .argument('<file>', 'name in the mount, or a path inside the mount')
    .argument('[url]', 'the new http(s) URL (or give --url-command)')
    .option('-H, --header <header>', 'replace the file\'s request headers, "Name: value" (repeat for more); without -H they stay', repeated)
    .option('--url-command <command>', URL_COMMAND_HELP)
    .action((file: string, url: string | undefined, opts: SetUrlOptions) => cli.withAgent(async (client, json) => {
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
    .action((file: string) => cli.withAgent(async (client, json) => {
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
    .action((folder: string | undefined, opts: { watch?: boolean }) => cli.withAgent(async (client, json) => {
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
      printTable(['name', 'size', 'progress', 'rate', 'state', 'open', 'waiters'], files.map(f => [
        shown(f.name) + (f.pinned ? ' (pinned)' : ''), bytes(f.size), percent(f.presentBytes, f.size), rate(f.bytesPerSecond),
        stateText(f.state, color) + stalledFor(f) + verificationNote(f) + pausedNote(f), f.openHandles, f.waiters,
      ]), 'no files; add one with: fsctl add URL');
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
    .action((file: string) => cli.withAgent(async (client, json) => {
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
        ['state', stateText(f.state, colorEnabled()) + (f.pinned ? ', pinned' : '') + pausedNote(f) +
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

  program.command('verify')
    .description('hash a complete file on disk again and check it against its digest; a mismatch drops its bytes and fetches them anew')
    .argument('<file>', 'name in the mount, or a path inside the mount')
    .action((file: string) => cli.withAgent(async (client, json) => {
      const r = await client.call<VerifyResult>(Methods.verify, { file: await fileArg(client, file) });
      if (!r.ok) process.exitCode = EXIT.refused;
      if (json) return printJson(r);
      process.stdout.write(r.ok
        ? `${shown(r.file)}: verified (${r.algorithm} ${r.actual})\n`
        : `${shown(r.file)}: does not match its ${r.algorithm} (expected ${r.expected}, got ${r.actual}); ` +
          'its bytes were dropped and are fetched again\n');
    }));

  fileCommand('cancel', 'stop a file\'s download; its waiting reads fail with EIO at once', Methods.cancel, f => `cancelled ${f.name}`);
  /** pause and resume: one <file>, or --all. */
  const fileOrAll = (
    name: string, description: string, method: string, say: (f: FileSummary) => string, sayAll: (n: number) => string
  ): void => {
    program.command(name)
      .description(description)
      .argument('[file]', 'name in the mount, or a path inside the mount')
      .option('--all', 'every file')
      .action((file: string | undefined, opts: { all?: boolean }) => cli.withAgent(async (client, json) => {
        if ((file === undefined) === (opts.all !== true)) fail(EXIT.usage, 'give a file, or --all', json);
        if (opts.all === true) {
          const res = await client.call<{ files: number }>(method, { all: true });
          if (json) return printJson(res);
          process.stdout.write(sayAll(res.files) + '\n');
          return;
        }
        const res = await client.call<FileSummary>(method, { file: await fileArg(client, file!) });
        if (json) return printJson(res);
        process.stdout.write(say(res) + '\n');
      }));
  };
  fileOrAll(
    'pause',
    'download nothing of a file (or of every file) that no program waits for, and keep its connections closed, until resumed; ' +
      'programs reading it still get their bytes; kept across restarts',
    Methods.pause,
    f => `paused ${shown(f.name)}: it downloads only what programs read`,
    n => `paused ${n} file(s)`
  );
  fileOrAll(
    'resume',
    'end a pause, or download a cancelled or failed file again, now (--all: every paused, cancelled or failed file)',
    Methods.resume,
    f => `resumed ${shown(f.name)} (${f.state})`,
    n => `resumed ${n} file(s)`
  );
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
    .action((file: string | undefined, opts: { all?: boolean; force?: boolean }) => cli.withAgent(async (client, json) => {
      if ((file === undefined) === (opts.all !== true)) fail(EXIT.usage, 'give a file, or --all', json);
      if (opts.all === true && opts.force === true) fail(EXIT.usage, '--force goes with one file, not --all', json);
      const params = opts.all === true
        ? { all: true }
        : { file: await fileArg(client, file!), ...(opts.force === true ? { force: true } : {}) };
      const res = await client.call<{ freedBytes: number }>(Methods.evict, params);
      if (json) return printJson(res);
      process.stdout.write(`freed ${bytes(res.freedBytes)}\n`);
    }));

  program.command('waiters')
    .description('every read waiting for bytes: file, offset, length, time waited and left, and the process that reads')
    .action(() => cli.withAgent(async (client, json) => {
      const waiters = await client.call<WaiterSummary[]>(Methods.listWaiters);
      if (json) return printJson(waiters);
      printTable(['file', 'offset', 'length', 'waited', 'fails in', 'download at', 'reader'], waiters.map(w => [
        shown(w.file), w.offset, w.length, duration(w.waitedMs), duration(w.deadlineInMs), w.downloadPosition ?? '-', readerText(w),
      ]), 'no reads are waiting');
    }));
}
