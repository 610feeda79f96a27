// The CLI run as a child for fault tests: NSTOOL_TEST_STEP makes it pause
// (or die) at a step point; onPause gets the child once it says it paused.
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/nstool.js');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Runs the CLI; ONPAUSE gets the child once it says it is paused at a test step point. */
export function cli(args: string[], env: Record<string, string> = {}, onPause?: (c: ChildProcess) => void): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (onPause && err.includes('nstool-test: paused at')) {
      const f = onPause;
      onPause = undefined;
      f(child);
    }
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, out, err });
    }),
  );
}
