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

export function defaultPaths (env: NodeJS.ProcessEnv = process.env): DefaultPaths {
  const home = env.HOME ?? os.homedir();
  if (process.platform === 'darwin') {
    const stateDir = path.join(home, 'Library', 'Application Support', 'fusestream');
    return {
      mount: '/Volumes/FuseStream',
      cacheDir: path.join(home, 'Library', 'Caches', 'fusestream'),
      stateDir,
      socket: path.join(stateDir, 'agent.sock'),
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
    socket: runtime !== undefined && path.isAbsolute(runtime)
      ? path.join(runtime, 'fusestream', 'agent.sock')
      : path.join(stateDir, 'agent.sock'),
    configFile: path.join(xdg('XDG_CONFIG_HOME', '.config'), 'fusestream', 'config.json'),
  };
}
