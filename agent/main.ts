#!/usr/bin/env -S node --single-threaded-gc
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent } from './agent';
import type { NetworkOptions } from './origin/http-client';
import { resolveProxies } from './origin/proxy-settings';
import { trustedAuthorities } from './origin/tls-trust';
import { checkWritableDirs, ConfigError, EXIT_CONFIG, parseAgentConfig, type ResolvedConfig } from './config';
import { FsError } from './errors';
import { createLogger, logDir } from './log';
import { makeDir } from './make-dir';
import { checkPrerequisites, thisMachine } from './platform/prerequisites';
import { InstanceLock } from './state/instance-lock';

function packageVersion (): string {
  try {
    return (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main (): Promise<void> {
  const version = packageVersion();
  let resolved: ResolvedConfig;
  let network: NetworkOptions;
  try {
    resolved = parseAgentConfig(process.argv, version);
    await checkWritableDirs(resolved);
    network = {
      ca: await trustedAuthorities(resolved.config.caFile, process.env).catch((err: Error) => { throw new ConfigError(err.message); }),
      proxies: resolveProxies(resolved.config.proxy, process.env),
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Nothing is mounted or opened yet: one line, and an exit status the service will not restart on.
    process.stderr.write(`fusestream-agent: invalid configuration: ${err.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const { config } = resolved;

  // Before the logger: log files live in the state folder, and belong to its one agent.
  let lock: InstanceLock;
  try {
    lock = await InstanceLock.acquire([config.stateDir, config.cacheDir], config.socket);
  } catch (err) {
    if (!(err instanceof FsError)) throw err;
    process.stderr.write(`fusestream-agent: cannot start: ${err.message}; stop it with \`fsctl stop\`, ` +
      'or give this agent its own --state-dir, --cache-dir, --socket and --mount\n');
    process.exit(1);
  }
  process.on('exit', () => lock.releaseSync());

  const missing = await checkPrerequisites(process.platform, thisMachine);
  if (missing.length > 0) {
    process.stderr.write(missing.map(l => `fusestream-agent: ${l}\n`).join(''));
    process.exit(1);
  }

  // pino-roll links current.log before its own mkdir has run: the folder must exist first.
  await makeDir(logDir(config.stateDir));
  const log = createLogger(config.logLevel, config.stateDir);
  const exit = (code: number): void => { log.flush(() => process.exit(code)); };

  let agent: Agent;
  try {
    agent = await Agent.start(resolved, log, version, network);
  } catch (err) {
    const message = (err as Error).message;
    // A refusal the agent understands (a busy socket, a mount folder in use) is one line; a bug gets its stack.
    if (!(err instanceof FsError)) log.fatal({ err }, `cannot start: ${message}`);
    process.stderr.write(`fusestream-agent: cannot start: ${message}\n`);
    return exit(1);
  }

  let signalled = false;
  const stop = (signal: string): void => {
    if (signalled) return;
    signalled = true;
    agent.shutdown(`received ${signal}`).then(() => exit(0), () => exit(1));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  agent.onStopped = () => exit(0);
  // A bug must not leave a dead mount behind: unmount, then die loudly.
  process.on('uncaughtException', err => {
    log.fatal({ err }, 'uncaught exception; unmounting and exiting');
    agent.shutdown('uncaught exception').finally(() => exit(1));
  });
}

void main();
