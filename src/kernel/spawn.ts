// Starting a program without forking Node: posix_spawn (a vfork) in the core,
// its end seen through a pidfd on the event loop (native/run.cc).
import { callSync } from '../errors.js';
import { core, type SpawnExit, type SpawnHandle } from './core.js';

export type { SpawnExit, SpawnHandle } from './core.js';

/** A child fd 0-2: an fd of ours, /dev/null, ours as is, or a pipe (stdin: INPUT or nothing). */
export type SpawnSlot = number | 'ignore' | 'inherit' | 'pipe';

// The core's codes for the named slots (native/run.cc).
const SLOT = { ignore: -1, inherit: -2, pipe: -3 } as const;
const code = (s: SpawnSlot): number => (typeof s === 'number' ? s : SLOT[s]);

/**
 * Starts FILE with ARGV and ENV (NAME=VALUE), fds 0-2 from STDIO and fd 3 a
 * report pipe; ON_EXIT runs once on the loop when it ended, with what it
 * printed (at most MAX_OUTPUT bytes of each stream).
 */
export function spawnStart(
  file: string,
  argv: string[],
  env: string[],
  stdio: readonly [SpawnSlot, SpawnSlot, SpawnSlot],
  input: Buffer | null,
  maxOutput: number,
  onExit: (x: SpawnExit) => void,
): SpawnHandle {
  return callSync(() => core().spawnStart(file, argv, env, [code(stdio[0]), code(stdio[1]), code(stdio[2])], input, maxOutput, onExit), `starting ${file}`);
}
