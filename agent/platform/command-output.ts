import { execFile } from 'node:child_process';

/** A command that does not answer within this long counts as saying nothing. */
const COMMAND_TIMEOUT_MS = 5000;

/** A system tool's stdout, or null when it is missing, fails or hangs. Never through a shell. */
export function commandOutput (command: string, args: string[]): Promise<string | null> {
  return new Promise(resolve => {
    execFile(command, args, { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout) => resolve(err === null ? stdout : null));
  });
}
