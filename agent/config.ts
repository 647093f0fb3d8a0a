import { constants, existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'commander';
import { checkConfigFileType, envName, sizeText, SPECS, type AgentConfig, type Source, type Value } from './config-settings';
import { defaultPaths, socketPathLimit } from './paths';
import { mountPlan, mountSettingsProblem, type MacBackend, type MountPlanInput } from './platform/mount-options';
import { makeDir } from './make-dir';
import { describeProxies, resolveProxies } from './origin/proxy-settings';

export type { AgentConfig, Source } from './config-settings';

/** A configuration problem, naming the key and where the bad value came from. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Exit status for a configuration error (sysexits EX_CONFIG); the service does not restart on it. */
export const EXIT_CONFIG = 78;

/**
 * What the platform's mount plan takes from the configuration, for a backend decided
 * (`auto` is decided on the Mac at start; the deadlines do not depend on it).
 */
export function mountPlanInput (c: AgentConfig, backend: MacBackend = c.macBackend === 'auto' ? 'kext' : c.macBackend): MountPlanInput {
  return { mountPoint: c.mount, readMaxWaitMs: c.readMaxWaitMs, macBackend: backend };
}

export interface ResolvedConfig {
  config: AgentConfig;
  sources: Record<string, Source>;
  /** The config file that was read, or null when there was none. */
  configFile: string | null;
}

/**
 * One line per option for `fsctl config`: the key, its value as set and as a user writes it,
 * where it came from, and what this platform makes of it (a deadline lowered, say).
 */
export interface ConfigLine { key: string; env: string; value: Value; text: string; source: Source; note: string | null }

export function describeConfig (
  r: ResolvedConfig,
  platform: NodeJS.Platform = process.platform,
  cacheMaxBytesInUse: number | null = null
): ConfigLine[] {
  const plan = mountPlan(platform, mountPlanInput(r.config));
  return SPECS.map(s => {
    const raw = r.config[s.attr] as Value;
    let value = s.show !== undefined ? s.show(raw) : raw;
    let note = s.attr === 'readMaxWaitMs' ? plan.readMaxWaitNote : null;
    if (s.attr === 'cacheMaxBytes' && value === null) {
      // Not set: the agent chose a quota at its first start and keeps it; say which and why.
      value = cacheMaxBytesInUse;
      note = AUTOMATIC_QUOTA + (cacheMaxBytesInUse === null ? ' (no agent is running to say what it chose)' : '') +
        '; set cache-max-bytes to choose another';
    }
    if (s.attr === 'proxy' && value === null) {
      note = describeProxies(resolveProxies(null, process.env)) ?? 'none in the environment: connections go direct';
    }
    const text = value === null
      ? `(${s.unsetText ?? 'automatic'})`
      : s.size === true && typeof value === 'number' ? sizeText(value) + (raw === null ? ' (automatic)' : '') : String(value);
    return { key: s.name, env: envName(s.name), value, text, source: r.sources[s.name], note };
  });
}

const AUTOMATIC_QUOTA = 'automatic: the smaller of 10 GiB and half the cache disk\'s free space, as it was at the agent\'s first start';

/**
 * Merges flags > environment > config file > defaults and checks every value. Throws a
 * ConfigError naming the key and the source of the bad value; nothing has been touched yet.
 */
export function resolveConfig (
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  configPath: string | null,
  explicitConfig: boolean,
  platform: NodeJS.Platform = process.platform
): ResolvedConfig {
  const d = defaultPaths(env, platform);
  const file = configPath !== null ? readConfigFile(configPath, explicitConfig) : null;
  if (file !== null) {
    for (const key of Object.keys(file)) {
      if (!SPECS.some(s => s.name === key)) {
        throw new ConfigError(`config file ${configPath}: unknown key "${key}" (known keys: ${SPECS.map(s => s.name).join(', ')})`);
      }
    }
  }
  const config = {} as Record<keyof AgentConfig, Value>;
  const sources: Record<string, Source> = {};
  for (const spec of SPECS) {
    const [raw, from]: [unknown, Source] =
      flags[spec.name] !== undefined
        ? [flags[spec.name], 'flag']
        : env[envName(spec.name)] !== undefined
          ? [env[envName(spec.name)], 'env']
          : file !== null && file[spec.name] !== undefined
            ? [file[spec.name], 'config']
            : [undefined, 'default'];
    try {
      if (from === 'config') checkConfigFileType(spec, raw);
      config[spec.attr] = from === 'default' ? spec.defaultValue(d) : spec.parse(raw, from, env);
    } catch (err) {
      const where = from === 'flag'
        ? `--${spec.name}`
        : from === 'env'
          ? envName(
            spec.name
          )
          : `"${spec.name}" in the config file ${configPath}`;
      throw new ConfigError(`${where} ${(err as Error).message}`);
    }
    sources[spec.name] = from;
  }
  const resolved = config as unknown as AgentConfig;
  const problem = mountSettingsProblem(platform, mountPlanInput(resolved));
  if (problem !== null) throw new ConfigError(problem);
  if (Buffer.byteLength(resolved.socket) > socketPathLimit(platform)) {
    throw new ConfigError(
      `socket path ${resolved.socket} is ${Buffer.byteLength(resolved.socket)} bytes; a Unix socket path may have at most ${socketPathLimit(platform)} here`
    );
  }
  return { config: resolved, sources, configFile: file !== null ? configPath : null };
}

function readConfigFile (file: string, mustExist: boolean): Record<string, unknown> | null {
  if (!existsSync(file)) {
    if (mustExist) throw new ConfigError(`config file ${file} does not exist`);
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object of settings`);
  }
  return parsed as Record<string, unknown>;
}

/** Checks the folders the agent writes to can be created and written, naming the key if not. */
export async function checkWritableDirs (r: ResolvedConfig): Promise<void> {
  const dirs: Array<[string, string]> = [
    ['cache-dir', r.config.cacheDir],
    ['state-dir', r.config.stateDir],
    ['socket', path.dirname(r.config.socket)],
  ];
  for (const [key, dir] of dirs) {
    try {
      await makeDir(dir);
      await fs.access(dir, constants.W_OK);
    } catch (err) {
      throw new ConfigError(
        `"${key}" (${dir}, from ${r.sources[key]}) is not a writable folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
      );
    }
  }
}

/** Parses the agent's command line (flags only) and resolves the whole configuration. */
export function parseAgentConfig (argv: string[], version: string, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const d = defaultPaths(env);
  const program = new Command('fusestream-agent')
    .description('Mounts remote HTTP(S) files as a read-only FUSE filesystem that streams as programs read.\n' +
      'Runs in the foreground; add files with `fsctl add URL`. Every option can also be set by an\n' +
      'environment variable (FUSESTREAM_<NAME>) or a key in the config file; flags win over the\n' +
      `environment, which wins over the config file (${d.configFile}).`)
    .version(version)
    .addOption(new Option('--config <file>', 'config file (JSON)').env('FUSESTREAM_CONFIG'))
    .showHelpAfterError();
  for (const spec of SPECS) {
    const flag = spec.negatable === true ? `--no-${spec.name}` : `--${spec.name}${spec.arg !== undefined ? ` ${spec.arg}` : ''}`;
    const shown = spec.describeDefault ?? String(spec.defaultValue(d));
    program.addOption(new Option(flag, `${spec.help} [${envName(spec.name)}; default: ${shown}]`));
  }
  program.parse(argv, { from: 'node' });
  const flags: Record<string, unknown> = {};
  for (const spec of SPECS) {
    const attr = spec.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (program.getOptionValueSource(attr) === 'cli') flags[spec.name] = program.getOptionValue(attr);
  }
  const explicit = program.opts<{ config?: string }>().config;
  return resolveConfig(flags, env, explicit !== undefined ? path.resolve(explicit) : d.configFile, explicit !== undefined);
}
