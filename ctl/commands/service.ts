import { Option, type Command } from 'commander';
import { Methods, type AgentStatus } from '../../agent/control/protocol';
import { EXIT, fail, printJson, type Cli } from '../cli';
import { defaultKind, install, renderService, serviceState, uninstall, type ServiceKind } from '../service';

/** service install, uninstall, status: the agent started at login. */
export function serviceCommands (cli: Cli): void {
  const service = cli.program.command('service')
    .description('start the agent at login: a systemd user unit (Linux) or a LaunchAgent (macOS)');
  function serviceCommand (name: 'install' | 'uninstall' | 'status', description: string): Command {
    return service.command(name)
      .description(description)
      .addOption(new Option('--kind <kind>', 'which service manager').choices(['systemd', 'launchd']).default(defaultKind()))
      .option('--files-only', 'only write or remove the file; do not call systemctl or launchctl');
  }
  async function plan (kind: ServiceKind, json: boolean): Promise<Awaited<ReturnType<typeof renderService>>> {
    const { config } = cli.localConfig(json);
    return renderService({ kind, home: process.env.HOME ?? '', env: process.env, mount: config.mount, stateDir: config.stateDir });
  }
  serviceCommand('install', 'render the service file for this machine, write it, enable and start it')
    .option('--dry-run', 'print the rendered file instead of installing it')
    .action(async (opts: { kind: ServiceKind; filesOnly?: boolean; dryRun?: boolean }) => {
      const { json } = cli.options;
      const p = await plan(opts.kind, json);
      if (opts.dryRun === true) { process.stdout.write(json ? JSON.stringify(p) + '\n' : p.content); return; }
      const steps = await install(p, opts.filesOnly === true);
      const failed = steps.find(s => !s.ok);
      if (json) printJson({ installed: p.target, carried: p.carried, steps });
      else {
        const took = p.carried.length === 0
          ? 'it passes on no proxy or CA variable (none is set here)\n'
          : `it passes on, from this shell: ${p.carried.join(', ')}` +
            `${p.secret ? ' (the file is readable by you only: it holds credentials)' : ''}\n`;
        process.stdout.write(
          `wrote ${p.target}\n` + took +
            (failed ? '' : opts.filesOnly ? '' : 'the agent is enabled and started; it will start at every login\n')
        );
      }
      if (failed) fail(EXIT.refused, `the file is written, but starting it failed: ${failed.detail}`, json);
    });
  serviceCommand('uninstall', 'stop and disable the service (the agent unmounts), and remove the file')
    .action(async (opts: { kind: ServiceKind; filesOnly?: boolean }) => {
      const { json } = cli.options;
      const p = await plan(opts.kind, json);
      const steps = await uninstall(p, opts.filesOnly === true);
      if (opts.filesOnly !== true) await cli.tryAgent(Methods.shutdown); // an agent started by hand stops too
      if (json) return printJson({ removed: p.target, steps });
      process.stdout.write(`removed ${p.target}\n`);
      for (const s of steps.filter(x => !x.ok)) process.stderr.write(`fsctl: note: ${s.detail}\n`);
    });
  serviceCommand('status', 'whether the service file is installed, what the service manager says, whether the agent answers')
    .action(async (opts: { kind: ServiceKind }) => {
      const { json } = cli.options;
      const p = await plan(opts.kind, json);
      const state = await serviceState(p);
      const agent = await cli.tryAgent<AgentStatus>(Methods.status);
      if (json) return printJson({ ...state, agentRunning: agent !== null, pid: agent?.pid ?? null });
      const file = state.installed ? `installed at ${state.file}` : `not installed (would go to ${state.file})`;
      const running = agent !== null ? `running, pid ${agent.pid}, mount ${agent.mount}` : 'not running';
      process.stdout.write(`${opts.kind} service: ${file}\nservice manager says: ${state.manager}\nagent: ${running}\n`);
    });
}
