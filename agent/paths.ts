import os from 'node:os';
import path from 'node:path';

/**
 * Default locations, shared by the agent and fsctl so both find the same socket:
 * XDG base directories on Linux, the usual Library folders on macOS.
 */
export interface DefaultPaths {
  mount: string;
  cacheDir: string;
  stateDir: string;
  socket: string;
  configFile: string;
}

/** The longest Unix socket path the platform takes (sun_path, less its NUL): 103 bytes on macOS, 107 on Linux. */
export function socketPathLimit (platform: NodeJS.Platform): number {
  return platform === 'darwin' ? 103 : 107;
}

/**
 * The socket path to use by default: the preferred one, or, when a long home folder makes it
 * too long for the platform, a short one under /tmp that the agent and fsctl both derive.
 */
function fitSocketPath (preferred: string, platform: NodeJS.Platform, uid: number): string {
  if (Buffer.byteLength(preferred) <= socketPathLimit(platform)) return preferred;
  return `/tmp/fusestream-${uid}/agent.sock`;
}

export function defaultPaths (env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): DefaultPaths {
  const home = env.HOME ?? os.homedir();
  const uid = process.getuid?.() ?? 0;
  if (platform === 'darwin') {
    const stateDir = path.join(home, 'Library', 'Application Support', 'fusestream');
    return {
      mount: '/Volumes/FuseStream',
      cacheDir: path.join(home, 'Library', 'Caches', 'fusestream'),
      stateDir,
      socket: fitSocketPath(path.join(stateDir, 'agent.sock'), platform, uid),
      configFile: path.join(stateDir, 'config.json'),
    };
  }
  const xdg = (name: string, fallback: string): string => {
    const v = env[name];
    return v !== undefined && path.isAbsolute(v) ? v : path.join(home, fallback);
  };
  const stateDir = path.join(xdg('XDG_STATE_HOME', '.local/state'), 'fusestream');
  const runtime = env.XDG_RUNTIME_DIR;
  return {
    mount: path.join(home, 'FuseStream'),
    cacheDir: path.join(xdg('XDG_CACHE_HOME', '.cache'), 'fusestream'),
    stateDir,
    socket: fitSocketPath(
      path.join(runtime !== undefined && path.isAbsolute(runtime) ? path.join(runtime, 'fusestream') : stateDir, 'agent.sock'),
      platform,
      uid
    ),
    configFile: path.join(xdg('XDG_CONFIG_HOME', '.config'), 'fusestream', 'config.json'),
  };
}
