// nstool command line: exit 0 on success, 1 on failure, 2 on wrong usage.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { NstoolError } from '../errors.js';
import { showText } from '../show.js';
import { errorJson, ExitCode, Io, processIo, UsageError } from './context.js';
import { registerFeaturesCommands } from './features-commands.js';
import { registerHookCommands } from './hook-commands.js';
import { registerNetnsCommands } from './netns-commands.js';
import { registerPodCommands } from './pod-commands.js';
import { registerSandboxCommands } from './sandbox-commands.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

// Commander quotes a bad option or argument whole: cap it and escape control characters.
const outputError = (s: string, write: (s: string) => void): void => write(`${showText(s.replace(/\n+$/, ''))}\n`);

export function buildProgram(io: Io): Command {
  const program = new Command('nstool')
    .description('namespace plumbing for pods with user namespaces')
    .version(version())
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError });
  registerNetnsCommands(program, io);
  registerPodCommands(program, io);
  registerSandboxCommands(program, io);
  registerHookCommands(program, io);
  registerFeaturesCommands(program, io);
  const configure = (c: Command): void => {
    c.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError });
    c.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof ExitCode) return err.exitCode;
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError || (err instanceof NstoolError && err.code.startsWith('ERR_INVALID_ARG'))) {
      if (json) io.stdout(JSON.stringify({ error: errorJson(err) }, null, 2) + '\n');
      io.stderr(`nstool: ${(err as Error).message}\n`);
      return 2;
    }
    if (json) io.stdout(JSON.stringify({ error: errorJson(err) }, null, 2) + '\n');
    io.stderr(`nstool: ${(err as Error).message}\n`);
    return 1;
  }
}
