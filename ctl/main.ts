#!/usr/bin/env node
import { CommanderError } from 'commander';
import { Cli, EXIT } from './cli';
import { agentCommands } from './commands/agent';
import { fileCommands } from './commands/files';
import { folderCommands } from './commands/folders';
import { serviceCommands } from './commands/service';

// The reader went away (`fsctl ls | head -1`): stop quietly, as every Unix tool does, rather than die with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
}

const cli = new Cli();
fileCommands(cli);
folderCommands(cli);
agentCommands(cli);
serviceCommands(cli);

cli.program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
    process.exit(ok ? EXIT.ok : EXIT.usage);
  }
  process.stderr.write(`fsctl: ${(err as Error).message}\n`);
  process.exit(EXIT.refused);
});
