// The commander program for one run: only the module of the command being
// run is loaded. With --json every outcome is exactly one JSON document on
// stdout: the command's data, or {"error": {...}} (exit 2 for wrong usage,
// 1 for a failure); what a person reads goes to stderr.
import { Command, CommanderError } from 'commander';
import { ErrorJSON, errorToJSON, suppressedOf } from '../errors.js';
import { showText } from '../show.js';
import { COMMANDS, PROGRAM_DESCRIPTION, topHelp, version } from './catalog.js';
import { ExitCode, UsageError } from './context.js';
import type { Io } from './io.js';

// Commander quotes a bad option or argument whole: cap it and escape control characters.
const outputError = (s: string, write: (s: string) => void): void => write(`${showText(s.replace(/\n+$/, ''))}\n`);

/** The command word of ARGV: its first operand (`help X` asks about X). The program's own options take no values. */
function commandWord(argv: readonly string[]): string | undefined {
  const operands = argv.filter((a) => !a.startsWith('-'));
  return operands[0] === 'help' ? operands[1] : operands[0];
}

/** --json before any `--` (after it, words belong to the command being run). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

function configure(c: Command, io: Io): void {
  c.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError });
  c.commands.forEach((s) => configure(s, io));
}

/**
 * The program with the commands of ARGV's module registered (all of them
 * when ARGV is undefined); the other top-level commands are there by name
 * and description only, so unknown words still get suggestions.
 */
export async function buildProgram(io: Io, argv?: readonly string[]): Promise<Command> {
  const program = new Command('nstool').description(PROGRAM_DESCRIPTION).version(version()).showHelpAfterError('(run with --help for usage)');
  // The top-level help comes from the catalog, the same text `nstool --help` prints without commander.
  program.helpInformation = () => topHelp(io.columns);
  const word = argv === undefined ? undefined : commandWord(argv);
  const wanted = argv === undefined ? COMMANDS : COMMANDS.filter((c) => c.name === word);
  const loaders = [...new Set(wanted.map((c) => c.load))];
  for (const register of await Promise.all(loaders.map((l) => l()))) register(program, io);
  for (const c of COMMANDS) if (!program.commands.some((x) => x.name() === c.name)) program.command(c.name).description(c.description);
  configure(program, io);
  return program;
}

// Commander's reasons for wrong usage, as codes of Node's own kind.
const USAGE_CODES: Record<string, string> = {
  'commander.unknownOption': 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
  'commander.excessArguments': 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL',
  'commander.invalidArgument': 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE',
  'commander.optionMissingArgument': 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE',
  'commander.missingArgument': 'ERR_MISSING_ARGS',
  'commander.missingMandatoryOptionValue': 'ERR_MISSING_OPTION',
  'commander.unknownCommand': 'ERR_NSTOOL_UNKNOWN_COMMAND',
};

function commanderJson(err: CommanderError): ErrorJSON {
  if (err.code === 'commander.help') return { code: 'ERR_NSTOOL_USAGE', message: 'a command is required (--help lists them)' };
  return { code: USAGE_CODES[err.code] ?? 'ERR_NSTOOL_USAGE', message: showText(err.message.replace(/^error: /, '')) };
}

function isUsage(err: unknown): boolean {
  if (err instanceof UsageError || err instanceof CommanderError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_INVALID_ARG');
}

/** Ends a run that threw ERR: the error document (with --json), a line on stderr, and the exit code. */
function fail(io: Io, json: boolean, err: unknown): number {
  const body = err instanceof CommanderError ? commanderJson(err) : errorToJSON(err);
  if (json) io.stdout(JSON.stringify({ error: body }, null, 2) + '\n');
  // Commander has said what was wrong already.
  if (!(err instanceof CommanderError)) {
    io.stderr(`nstool: ${(err as Error)?.message ?? showText(String(err))}\n`);
    for (const s of suppressedOf(err)) io.stderr(`nstool:   also: ${errorToJSON(s).message}\n`);
  }
  return isUsage(err) ? 2 : 1;
}

export async function run(argv: string[], io: Io): Promise<number> {
  const json = wantsJson(argv);
  // With --json, stdout is held until the outcome is known: one document, never two.
  const held: string[] = [];
  const cio: Io = json ? { ...io, stdout: (s) => void held.push(s), stdoutBytes: (b) => void held.push(Buffer.from(b).toString()) } : io;
  let code = 0;
  try {
    const program = await buildProgram(cio, argv);
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof ExitCode) code = err.exitCode;
    else if (err instanceof CommanderError && err.exitCode === 0) {
      // --help or --version: with --json, their text inside a document.
      if (json) {
        const text = held.splice(0).join('');
        held.push(JSON.stringify(err.code === 'commander.version' ? { version: text.trim() } : { help: text }, null, 2) + '\n');
      }
    } else return fail(io, json, err);
  }
  if (json) io.stdout(held.join(''));
  return code;
}
