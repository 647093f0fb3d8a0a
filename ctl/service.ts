import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { PROXY_VARIABLES, proxyHasCredentials, redactProxy } from '../agent/origin/proxy-settings';

const execFileAsync = promisify(execFile);

/** Repository root as installed: dist/ctl/service.js -> ../.. */
const ROOT = path.resolve(__dirname, '..', '..');
const SYSTEMD_UNIT = 'fusestream.service';
const LAUNCHD_LABEL = 'com.fusestream.agent';

export type ServiceKind = 'systemd' | 'launchd';

export interface ServicePlan {
  kind: ServiceKind;
  /** Where the rendered file goes. */
  target: string;
  content: string;
  /** The installing shell's variables the file passes on, as NAME=value with credentials hidden. */
  carried: string[];
  /** A proxy URL in the file carries credentials: it is written readable by its owner only. */
  secret: boolean;
}

/**
 * What the agent needs of the installing shell's environment at login too, where a service
 * manager gives it none of it: the proxies (read as curl reads them) and Node's extra CAs.
 */
const CARRIED_VARIABLES = [...PROXY_VARIABLES, 'NODE_EXTRA_CA_CERTS'];

/** The carried variables the environment sets, in CARRIED_VARIABLES' order. */
function carriedVariables (env: NodeJS.ProcessEnv): Array<[string, string]> {
  return CARRIED_VARIABLES.flatMap(name => {
    const v = env[name];
    return v !== undefined && v.trim() !== '' && !/[\n\r]/.test(v) ? [[name, v] as [string, string]] : [];
  });
}

/** systemd's Environment= line: quoted, with its specifier character and quotes escaped. */
function systemdEnvironment (name: string, value: string): string {
  return `Environment="${name}=${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

export interface RenderInput {
  kind: ServiceKind;
  home: string;
  env: NodeJS.ProcessEnv;
  mount: string;
  stateDir: string;
}

/**
 * The folders of a PATH that outlive this command: absolute ones, less those npm puts in
 * front for `npx` and scripts (its temporary `_npx` folders, `node_modules/.bin`, node-gyp's
 * shims), which a service started at login must not depend on. Duplicates go; order stays.
 */
export function stablePath (pathVar: string | undefined): string {
  const kept: string[] = [];
  for (const dir of (pathVar ?? '').split(':')) {
    const parts = dir.split('/');
    const npmOwned = parts.includes('node_modules') || parts.includes('_npx') || parts.includes('node-gyp-bin');
    if (path.isAbsolute(dir) && !npmOwned && !kept.includes(dir)) kept.push(dir);
  }
  return kept.length > 0 ? kept.join(':') : '/usr/local/bin:/usr/bin:/bin';
}

/**
 * The PATH for the service: the stable folders, plus the system ones the agent runs tools
 * from (diskutil is in /usr/sbin on macOS, which a login shell's PATH may lack).
 */
export function servicePath (kind: ServiceKind, pathVar: string | undefined): string {
  const dirs = stablePath(pathVar).split(':');
  const system = kind === 'launchd' ? ['/usr/bin', '/bin', '/usr/sbin', '/sbin'] : ['/usr/bin', '/bin'];
  for (const dir of system) if (!dirs.includes(dir)) dirs.push(dir);
  return dirs.join(':');
}

/**
 * The node a service should start: the `node` on the stable PATH that is this very node
 * (Homebrew's /opt/homebrew/bin/node, say), not the resolved versioned path that an upgrade
 * deletes (…/Cellar/node/20.x/bin/node); this node's own path when none on PATH is it.
 */
export async function stableNodePath (execPath: string, pathVar: string): Promise<string> {
  const real = await fs.realpath(execPath).catch(() => execPath);
  for (const dir of pathVar.split(':')) {
    const candidate = path.join(dir, 'node');
    if (candidate === execPath) return candidate;
    if (await fs.realpath(candidate).then(r => r === real, () => false)) return candidate;
  }
  return execPath;
}

export function defaultKind (): ServiceKind {
  return process.platform === 'darwin' ? 'launchd' : 'systemd';
}

/** Renders the service file for this machine: absolute paths of node and of the agent, the user's folders. */
export async function renderService (input: RenderInput): Promise<ServicePlan> {
  const servicePathVar = servicePath(input.kind, input.env.PATH);
  const values: Record<string, string> = {
    NODE: await stableNodePath(process.execPath, servicePathVar),
    AGENT: path.join(ROOT, 'dist', 'agent', 'main.js'),
    README: path.join(ROOT, 'README.md'),
    MOUNT: input.mount,
    PATH: servicePathVar,
    FUSERMOUNT: await findFusermount(),
    LOG_DIR: path.join(input.home, 'Library', 'Logs', 'fusestream'),
  };
  const template = input.kind === 'systemd'
    ? path.join(ROOT, 'systemd', SYSTEMD_UNIT)
    : path.join(ROOT, 'launchd', `${LAUNCHD_LABEL}.plist`);
  const escape = input.kind === 'launchd' ? xmlEscape : (s: string) => s;
  const carried = carriedVariables(input.env);
  // Rendered whole here (its own escaping), then put in as is.
  const environment = carried.map(([k, v]) => input.kind === 'launchd'
    ? `    <key>${xmlEscape(k)}</key>\n    <string>${xmlEscape(v)}</string>`
    : systemdEnvironment(k, v)).join('\n');
  const content = (await fs.readFile(template, 'utf8'))
    .replace(/^[ \t]*\{\{ENVIRONMENT\}\}\n/m, environment === '' ? '' : `${environment}\n`)
    .replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => escape(values[key] ?? ''));
  const xdgConfig = input.env.XDG_CONFIG_HOME;
  const configHome = xdgConfig !== undefined && path.isAbsolute(xdgConfig) ? xdgConfig : path.join(input.home, '.config');
  const target = input.kind === 'systemd'
    ? path.join(configHome, 'systemd', 'user', SYSTEMD_UNIT)
    : path.join(input.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  const isProxy = (k: string): boolean => /proxy$/i.test(k) && !/^no_proxy$/i.test(k);
  return {
    kind: input.kind,
    target,
    content,
    carried: carried.map(([k, v]) => `${k}=${isProxy(k) ? redactProxy(v) : v}`),
    secret: carried.some(([k, v]) => isProxy(k) && proxyHasCredentials(v)),
  };
}

export interface StepResult { ok: boolean; detail: string }

/** Runs a service-manager command; a failure is reported, not thrown. */
async function step (cmd: string, args: string[]): Promise<StepResult> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { timeout: 30_000 });
    return { ok: true, detail: stdout.trim() };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    return { ok: false, detail: `${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}` };
  }
}

/** Writes the file, then (unless filesOnly) enables and starts the service. */
export async function install (plan: ServicePlan, filesOnly: boolean): Promise<StepResult[]> {
  await fs.mkdir(path.dirname(plan.target), { recursive: true });
  // launchd opens its log files itself and gives up if their folder is missing.
  if (plan.kind === 'launchd') {
    await fs.mkdir(path.join(path.dirname(path.dirname(plan.target)), 'Logs', 'fusestream'), { recursive: true });
  }
  // A new file, so it is created with this mode: an earlier one would keep its own, and hold credentials readable meanwhile.
  await fs.rm(plan.target, { force: true });
  await fs.writeFile(plan.target, plan.content, { mode: plan.secret ? 0o600 : 0o644 });
  if (filesOnly) return [];
  if (plan.kind === 'systemd') {
    const reload = await step('systemctl', ['--user', 'daemon-reload']);
    return reload.ok ? [reload, await step('systemctl', ['--user', 'enable', '--now', SYSTEMD_UNIT])] : [reload];
  }
  // bootstrap fails (error 5) while the label is loaded, as after an earlier install: unload it
  // first; that fails harmlessly when it is not loaded.
  const domain = `gui/${process.getuid?.() ?? 0}`;
  await step('launchctl', ['bootout', `${domain}/${LAUNCHD_LABEL}`]);
  return [await step('launchctl', ['bootstrap', domain, plan.target])];
}

/** Stops and disables the service (the agent unmounts as it stops), then removes the file. */
export async function uninstall (plan: ServicePlan, filesOnly: boolean): Promise<StepResult[]> {
  const results: StepResult[] = [];
  if (!filesOnly) {
    results.push(plan.kind === 'systemd'
      ? await step('systemctl', ['--user', 'disable', '--now', SYSTEMD_UNIT])
      : await step('launchctl', ['bootout', `gui/${process.getuid?.() ?? 0}/${LAUNCHD_LABEL}`]));
  }
  await fs.rm(plan.target, { force: true });
  if (!filesOnly && plan.kind === 'systemd') results.push(await step('systemctl', ['--user', 'daemon-reload']));
  return results;
}

export async function serviceState (plan: ServicePlan): Promise<{ installed: boolean; file: string; manager: string }> {
  const installed = await fs.access(plan.target).then(() => true, () => false);
  const manager = plan.kind === 'systemd'
    ? (await step('systemctl', ['--user', 'is-active', SYSTEMD_UNIT])).detail
    : (await step('launchctl', ['print', `gui/${process.getuid?.() ?? 0}/${LAUNCHD_LABEL}`])).ok ? 'loaded' : 'not loaded';
  return { installed, file: plan.target, manager };
}

async function findFusermount (): Promise<string> {
  for (const p of ['/usr/bin/fusermount', '/bin/fusermount', '/usr/bin/fusermount3']) {
    if (await fs.access(p).then(() => true, () => false)) return p;
  }
  return '/usr/bin/fusermount';
}

function xmlEscape (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
