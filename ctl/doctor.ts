import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { keepsFilesSparse } from '../agent/cache/sparse-check';
import { nearestFolder } from '../agent/make-dir';
import { ConfigError, type ResolvedConfig } from '../agent/config';
import type { AgentStatus } from '../agent/control/protocol';
import { commandOutput } from '../agent/platform/command-output';
import { probeMacFacts } from '../agent/platform/mac-facts';
import { mountChecks, type CheckLine, type DoctorProbe } from '../agent/platform/machine-checks';
import { thisMachine } from '../agent/platform/prerequisites';
import { bytes } from './format';
import { serviceState, type ServicePlan } from './service';

/** This machine, as `fsctl doctor` examines it. */
export const doctorProbe: DoctorProbe = {
  ...thisMachine,
  stat: p => fs.stat(p).then(s => ({ mode: s.mode, uid: s.uid, rdev: s.rdev }), () => null),
  output: commandOutput,
  uid: process.getuid?.() ?? -1,
  macFacts: probeMacFacts,
};

/** What doctor needs besides the machine: the configuration (or why it is invalid), the agent, the service. */
export interface DoctorInput {
  config: ResolvedConfig | ConfigError;
  /** The running agent's status, or null when none answers. */
  agent: AgentStatus | null;
  service: ServicePlan | null;
}

/**
 * `fsctl doctor`: every check a mount needs, one line each with the fix, whether or not an
 * agent runs. A mount can work when no line failed.
 */
export async function runDoctor (platform: NodeJS.Platform, probe: DoctorProbe, input: DoctorInput): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  if (input.config instanceof ConfigError) {
    lines.push({ status: 'fail', what: 'configuration', detail: `invalid: ${input.config.message}` });
    return [...lines, ...await mountChecks(platform, probe, '/Volumes/FuseStream', 'auto')];
  }
  const { config, configFile } = input.config;
  lines.push({ status: 'ok', what: 'configuration', detail: configFile ?? 'defaults (no config file)' });
  lines.push(...await mountChecks(platform, probe, config.mount, config.macBackend));
  lines.push(await folderCheck('cache folder', config.cacheDir), await folderCheck('state folder', config.stateDir));
  lines.push(...await cacheChecks(config.cacheDir, config.cacheMaxBytes, input.agent));
  lines.push({ status: 'ok', what: 'socket', detail: `${config.socket} (${Buffer.byteLength(config.socket)} bytes: short enough)` });
  const a = input.agent;
  lines.push({
    status: 'ok',
    what: 'agent',
    detail: a !== null
      ? `running, pid ${a.pid}, ${a.mount} ${a.mounted ? 'mounted' : 'not mounted'}`
      : 'not running (start it with fusestream-agent, or at login with fsctl service install)',
  });
  if (input.service !== null) {
    const s = await serviceState(input.service);
    const detail = s.installed ? `installed at ${s.file}; the service manager says ${s.manager}` : 'not installed';
    lines.push({ status: 'ok', what: 'service', detail });
  }
  return lines;
}

/** A folder the agent writes to: it can be written, or made where it is missing. */
async function folderCheck (what: string, dir: string): Promise<CheckLine> {
  let at: string;
  try {
    at = await nearestFolder(dir);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { status: 'fail', what, detail: `${dir} cannot be made (${why}): choose another` };
  }
  const writable = await fs.access(at, constants.W_OK).then(() => true, () => false);
  if (!writable) {
    return { status: 'fail', what, detail: `${dir} cannot be ${at === dir ? 'written' : `made (${at} is not writable)`}: choose another` };
  }
  return { status: 'ok', what, detail: at === dir ? `${dir}, writable` : `${dir}, made at the agent's first start` };
}

const NOT_SPARSE = 'the cache folder\'s disk fills them whole (HFS+, exFAT): put it on APFS or ext4 with --cache-dir';

/** The cache disk: sparse files stay sparse, and the quota fits in its free space. */
async function cacheChecks (cacheDir: string, configured: number | null, agent: AgentStatus | null): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const at = await nearestFolder(cacheDir).catch(() => null);
  if (at === null) return lines; // the cache folder's own line says why
  const sparse = at === cacheDir ? await keepsFilesSparse(cacheDir).catch(() => null) : null;
  lines.push(sparse === null
    ? { status: 'ok', what: 'sparse files', detail: 'checked when the cache folder exists' }
    : sparse
      ? { status: 'ok', what: 'sparse files', detail: 'stay sparse in the cache folder' }
      : { status: 'warn', what: 'sparse files', detail: NOT_SPARSE });
  const st = await fs.statfs(at).catch(() => null);
  if (st === null) return lines;
  const free = st.bavail * st.bsize;
  const quota = agent?.cache.maxBytes ?? configured;
  const used = agent?.cache.usedBytes ?? 0;
  const freeText = `${bytes(free)} free on the cache disk${quota !== null ? `, quota ${bytes(quota)}` : ''}`;
  lines.push(quota !== null && quota - used > free
    ? {
        status: 'warn',
        what: 'free space',
        detail: `${bytes(free)} free on the cache disk, under the ${bytes(quota)} quota (${bytes(used)} used): ` +
          'downloads pause for room before the quota is reached; lower cache-max-bytes or free space',
      }
    : { status: 'ok', what: 'free space', detail: freeText });
  return lines;
}
