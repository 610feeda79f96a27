// What every command shares: printing text or JSON, tables, and the errors
// that end a command.
import { Command, Option } from 'commander';
import { ErrorJSON, errorToJSON, NstoolError } from '../errors.js';
import { showValue } from '../names.js';
import type { Io } from './io.js';

export type { Io } from './io.js';
export { processIo } from './io.js';

/** Adds --json to a command. */
export function withJson(cmd: Command): Command {
  return cmd.addOption(new Option('--json', 'print one JSON document on stdout (errors too: {"error": {...}})'));
}

/** Prints DATA as JSON when --json was given, else the text from TEXT. */
export function emit(io: Io, json: boolean | undefined, data: unknown, text: () => string): void {
  if (json) io.stdout(JSON.stringify(data, null, 2) + '\n');
  else {
    const t = text();
    if (t) io.stdout(t.endsWith('\n') ? t : t + '\n');
  }
}

/** The JSON of any thrown value: its toJSON() (every NstoolError has one), else Node's error fields. */
export function errorJson(err: unknown): ErrorJSON {
  return errorToJSON(err);
}

/**
 * ROWS as a listing: on a terminal a header row and aligned columns; piped,
 * tab-separated rows and no header (what scripts read).
 */
export function table(io: Io, header: readonly string[], rows: readonly (readonly string[])[]): string {
  if (!io.isTTY) return rows.map((r) => r.join('\t')).join('\n');
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** Thrown by a command to end with a given exit code and no message (its output stands). */
export class ExitCode extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** Wrong use of a command: exit code 2, like a parse error. */
export class UsageError extends NstoolError {
  constructor(message: string, code = 'ERR_NSTOOL_USAGE') {
    super(message, { code });
    this.name = 'UsageError';
  }
}

/**
 * A command that ran and found something wrong (gc actions that failed, an
 * unhealthy sandbox): exit 1, and what it found rides in the error's JSON.
 */
export class ReportedFailure extends NstoolError {
  constructor(
    message: string,
    code: string,
    readonly report: Record<string, unknown>,
    hint?: string,
  ) {
    super(message, { code, ...(hint ? { hint } : {}) });
    this.name = 'ReportedFailure';
  }

  override toJSON(): ErrorJSON {
    return { ...super.toJSON(), ...this.report };
  }
}

/** A whole number of at least MIN from a command-line option, else a UsageError. */
export function intOption(value: string, name: string, min = 1): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > 2 ** 31 - 1) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${2 ** 31 - 1}, got ${showValue(value)}`, 'ERR_INVALID_ARG_VALUE');
  }
  return n;
}
