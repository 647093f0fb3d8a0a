#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent } from './agent';
import { parseAgentConfig } from './config';
import { createLogger } from './log';
import { checkPrerequisites } from './prerequisites';

function packageVersion (): string {
  try {
    return (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main (): Promise<void> {
  const version = packageVersion();
  const config = parseAgentConfig(process.argv, version);
  const log = createLogger(config.logLevel);
  const exit = (code: number): void => { log.flush(() => process.exit(code)); };

  const missing = await checkPrerequisites(config);
  if (missing.length > 0) {
    for (const line of missing) log.fatal(line);
    process.stderr.write(missing.map(l => `fusestream-agent: ${l}\n`).join(''));
    return exit(1);
  }

  let agent: Agent;
  try {
    agent = await Agent.start(config, log, version);
  } catch (err) {
    const message = (err as Error).message;
    log.fatal({ err }, `cannot start: ${message}`);
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
