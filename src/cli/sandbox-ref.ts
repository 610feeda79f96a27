// --sandbox ID on exec, spec and run-pod: the sandbox's pins, read from its
// state (loadSandbox, checked against what is there), so nobody needs to
// know how its resources are named.
import path from 'node:path';
import { Command } from 'commander';
import { NstoolError } from '../errors.js';
import { UsageError } from './context.js';

export interface SandboxFlags {
  sandbox?: string;
  sandboxStateDir?: string;
}

/** Adds --sandbox and --sandbox-state-dir to CMD. */
export function sandboxFlags(cmd: Command, defaultStateDir: string): Command {
  return cmd
    .option('--sandbox <id>', 'use the netns and userns of this sandbox (instead of naming a netns)')
    .option('--sandbox-state-dir <dir>', "the sandbox's instance: sandbox create's --state-dir", defaultStateDir);
}

export interface SandboxPins {
  netnsPath: string;
  pinDir: string;
  usernsPinDir?: string;
}

/** The pins of sandbox ID of the instance STATE_DIR: it must be ready with its netns in place. */
export async function sandboxPins(id: string, stateDir: string): Promise<SandboxPins> {
  // Loaded here: exec without --sandbox needs none of the sandbox code.
  const { loadSandbox } = await import('../sandbox/query.js');
  const s = await loadSandbox(id, { stateDir });
  if (!s) throw new NstoolError(`no sandbox ${id} in ${stateDir}`, { code: 'ENOENT', path: stateDir, hint: '`nstool sandbox list --state-dir DIR` shows the sandboxes' });
  if (s.phase !== 'ready' || !s.netnsPath || !s.netnsPresent) {
    throw new NstoolError(`sandbox ${id} is not ready (phase ${s.phase}${s.netnsPresent ? '' : ', its netns pin is gone'})`, {
      code: 'ERR_NSTOOL_SANDBOX_NOT_READY',
      hint: '`nstool sandbox check ID` says what is wrong',
    });
  }
  return { netnsPath: s.netnsPath, pinDir: path.dirname(s.netnsPath), ...(s.usernsPath ? { usernsPinDir: path.dirname(s.usernsPath) } : {}) };
}

/** --sandbox or a netns operand, exactly one: the sandbox's pins, or null to use the operand. */
export async function netnsOrSandbox(o: SandboxFlags, netns: string | undefined, what: string): Promise<SandboxPins | null> {
  if (o.sandbox === undefined) {
    if (netns === undefined) throw new UsageError(`give ${what} or --sandbox ID`, 'ERR_MISSING_ARGS');
    return null;
  }
  if (netns !== undefined) throw new UsageError(`give ${what} or --sandbox ID, not both`);
  return sandboxPins(o.sandbox, path.resolve(o.sandboxStateDir ?? ''));
}
