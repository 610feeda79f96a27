// What every command shares: printing text or JSON, and the error shape.
import { Command, Option } from 'commander';
import { NstoolError } from '../errors.js';
import { showValue } from '../names.js';

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export const processIo: Io = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** Adds --json to a command. */
export function withJson(cmd: Command): Command {
  return cmd.addOption(new Option('--json', 'print machine-readable JSON on stdout'));
}

/** Prints DATA as JSON when --json was given, else the text from TEXT. */
export function emit(io: Io, json: boolean | undefined, data: unknown, text: () => string): void {
  if (json) io.stdout(JSON.stringify(data, null, 2) + '\n');
  else {
    const t = text();
    if (t) io.stdout(t.endsWith('\n') ? t : t + '\n');
  }
}

export function errorJson(err: unknown): Record<string, unknown> {
  const e = err as Partial<NstoolError> & { message?: string };
  const out: Record<string, unknown> = { code: e.code ?? 'ERR_NSTOOL', message: e.message ?? String(err) };
  for (const k of ['errno', 'syscall', 'path', 'dest', 'hint'] as const) if (e[k] !== undefined) out[k] = e[k];
  // Fields of the error subclasses (CNI plugin, runtime) ride along.
  const extra = err as Record<string, unknown>;
  for (const k of ['plugin', 'cniCode', 'cniMsg', 'cniDetails', 'runtimeMessage', 'exitCode', 'argv'])
    if (extra[k] !== undefined) out[k] = extra[k];
  return out;
}

/** Thrown by a command to end with a given exit code and no message. */
export class ExitCode extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** Wrong use of a command: exit code 2, like a parse error. */
export class UsageError extends Error {}

/** A whole number of at least MIN from a command-line option, else a UsageError. */
export function intOption(value: string, name: string, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > 2 ** 31 - 1) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${2 ** 31 - 1}, got ${showValue(value)}`);
  }
  return n;
}
