import { Methods, Notifications, type AgentEvent, type AgentStatus } from '../../agent/control/protocol';
import { ConfigError, resolveConfig, describeConfig, type ConfigLine, type ResolvedConfig } from '../../agent/config';
import type { CheckLine } from '../../agent/platform/machine-checks';
import { logDir } from '../../agent/log';
import { defaultPaths } from '../../agent/paths';
import { EXIT, fail, printJson, printTable, type Cli } from '../cli';
import { runDoctor, doctorProbe } from '../doctor';
import { bytes, colorEnabled, duration, percent, rate, shown, stateText } from '../format';
import { parseRate, rateText, type BandwidthLimits } from '../../agent/store/bandwidth-limiter';
import { showLogs } from '../logs';
import { openInBrowser } from '../open-browser';
import { defaultKind, renderService } from '../service';

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

/** The agent as a whole: events, ping, stop, config, logs, doctor. */
export function agentCommands (cli: Cli): void {
  const { program } = cli;
  program.command('events')
    .description('stream progress, state changes, stalls and errors until Ctrl-C')
    .action(() => cli.withAgent(async (client, json) => {
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

  program.command('limit')
    .description('cap the agent\'s download rate now, until it stops (the configuration is not changed): RATE as rclone writes it ' +
      '(512K, 8M, 1.5G: KiB, MiB, GiB per second) or off; without arguments, print the caps')
    .argument('[rate]', 'cap on every download together, or off')
    .option('--background <rate>', 'cap on downloads no program waits on (fills, prefetch, resumed downloads), or off')
    .action((given: string | undefined, opts: { background?: string }) => cli.withAgent(async (client, json) => {
      const parse = (raw: string, what: string): number | null => {
        try { return parseRate(raw); } catch (err) { return fail(EXIT.usage, `${what}: ${(err as Error).message}`, json); }
      };
      const params: Partial<BandwidthLimits> = {};
      if (given !== undefined) params.total = parse(given, 'rate');
      if (opts.background !== undefined) params.background = parse(opts.background, '--background');
      const limits = Object.keys(params).length === 0
        ? (await client.call<AgentStatus>(Methods.status)).limits
        : await client.call<AgentStatus['limits']>(Methods.limit, params);
      if (json) return printJson(limits);
      const cap = (v: number | null): string => (v === null ? 'off' : `${rateText(v)} (${rate(v)})`);
      process.stdout.write(`every download: ${cap(limits.total)}\nbackground downloads: ${cap(limits.background)}\n`);
    }));

  program.command('ui')
    .description('open the dashboard in your browser, logged in; prints its address for a browser elsewhere on this machine')
    .option('--no-open', 'print the address only')
    .action((opts: { open: boolean }) => cli.withAgent(async (client, json) => {
      const { url } = await client.call<{ url: string }>(Methods.dashboard);
      const problem = opts.open ? await openInBrowser(url, process.platform) : null;
      if (json) return printJson({ url, opened: opts.open && problem === null, problem });
      process.stdout.write(`dashboard: ${url}\n(the link holds the agent's secret: it logs a browser in; keep it to yourself)\n`);
      if (problem !== null) process.stderr.write(`fsctl: could not open a browser: ${problem}; open the address above in one\n`);
    }));

  program.command('ping')
    .description('check that the agent answers')
    .action(() => cli.withAgent(async (client, json) => {
      const pong = await client.call<string>(Methods.ping);
      if (json) return printJson({ ok: pong === 'pong' });
      process.stdout.write('the agent is running\n');
    }));

  program.command('stop')
    .description('stop the agent: fail waiting reads, unmount, exit')
    .action(() => cli.withAgent(async (client, json) => {
      const status = await client.call<AgentStatus>(Methods.status);
      await client.call(Methods.shutdown);
      if (json) return printJson({ stopping: true, pid: status.pid });
      process.stdout.write(`stopping the agent (pid ${status.pid}); ${status.mount} will be unmounted\n`);
    }));

  program.command('config')
    .description('the effective configuration, and where each value came from (flag, env, config file, default)')
    .action(async () => {
      const { json } = cli.options;
      const fromAgent = await cli.tryAgent<{ configFile: string | null; options: ConfigLine[] }>(Methods.config);
      const local = fromAgent === null ? cli.localConfig(json) : null;
      const result = fromAgent ?? { configFile: local!.configFile, options: describeConfig(local!) };
      if (json) return printJson({ agentRunning: fromAgent !== null, ...result });
      if (fromAgent === null) process.stdout.write('no agent is running: this is what one started now would use\n');
      process.stdout.write(`config file: ${result.configFile ?? `none (${defaultPaths().configFile} does not exist)`}\n`);
      printTable(['setting', 'value', 'from', 'environment variable'], result.options.map(o => [o.key, o.text, o.source, o.env]));
      for (const o of result.options) if (o.note !== null) process.stdout.write(`${o.key}: ${o.note}\n`);
    });

  program.command('logs')
    .description('the agent\'s log, readable (pretty on a terminal; --json for raw lines)')
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'how many past lines to print', '50')
    .action(async (opts: { follow?: boolean; lines: string }) => {
      const { json } = cli.options;
      const status = await cli.tryAgent<AgentStatus>(Methods.status);
      const dir = status?.logDir ?? logDir(cli.localConfig(json).config.stateDir);
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
      const { json } = cli.options;
      let config: ResolvedConfig | ConfigError;
      try {
        config = resolveConfig({}, process.env, defaultPaths().configFile, false);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        config = err;
      }
      const agent = await cli.tryAgent<AgentStatus>(Methods.status);
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
}
