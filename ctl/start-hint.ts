import path from 'node:path';

/**
 * The command that starts an agent where this fsctl lives: `fusestream-agent` when the
 * package was installed (it sits in a node_modules folder, and npm linked the bin), or
 * `npm start` in its folder when it is a clone, where no fusestream-agent is on PATH.
 */
export function agentStartHint (packageRoot: string, socket: string, defaultSocket: boolean): string {
  const installed = packageRoot.split(path.sep).includes('node_modules');
  const socketArg = defaultSocket ? '' : ` --socket ${socket}`;
  if (installed) return `fusestream-agent${socketArg}`;
  const inRoot = path.resolve(process.cwd()) === path.resolve(packageRoot) ? '' : `cd ${packageRoot} && `;
  return `${inRoot}npm start${socketArg === '' ? '' : ` --${socketArg}`}`;
}
