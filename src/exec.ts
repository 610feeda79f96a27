// Running programs inside namespaces: fork + setns + execve in the native
// core, never setns on a Node thread (namespaces are per thread and the
// libuv pool would carry them into unrelated work).
import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callAsync, invalidArg, NstoolError } from './errors.js';
import { native } from './native.js';
import { hostUsernsInode, NS_TYPES, PinDirs, resolvePin } from './netns.js';

export interface RunOptions {
  /** Namespace files to join (netns first, then userns). */
  netns?: string;
  userns?: string;
  /** Join the userns that owns netns instead of a userns file. */
  ownerUserns?: boolean;
  /** After joining the userns, become its root (default true, as nsenter). */
  becomeRoot?: boolean;
  /** Environment; defaults to this process's, less NOTIFY_SOCKET. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Bytes for stdin; stdin is /dev/null-like (closed pipe) otherwise. */
  input?: string | Buffer;
  /** "inherit" hands this process's 0/1/2 to the program. */
  stdio?: 'pipe' | 'inherit';
  timeoutMs?: number;
  maxOutput?: number;
}

export interface RunResult {
  pid: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** Resolves a program name against PATH (this mount namespace's view). */
export function which(file: string, envPath = process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string {
  if (file.includes('/')) return path.resolve(file);
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, file);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  throw new NstoolError(`${file}: command not found in PATH`, { code: 'ENOENT', path: file, syscall: 'execve' });
}

const SIGNALS: Record<number, NodeJS.Signals> = Object.fromEntries(
  Object.entries(os.constants.signals).map(([k, v]) => [v, k as NodeJS.Signals]),
);

function envList(env: Record<string, string | undefined>): string[] {
  return Object.entries(env)
    .filter(([k, v]) => v !== undefined && k !== 'NOTIFY_SOCKET')
    .map(([k, v]) => `${k}=${v}`);
}

/** Runs ARGV with the given namespaces joined; resolves when it exits. */
export async function runInNamespaces(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw invalidArg('argv must be a non-empty array of strings without NUL');
  }
  if (opts.timeoutMs !== undefined && (!Number.isSafeInteger(opts.timeoutMs) || opts.timeoutMs < 1 || opts.timeoutMs > 2 ** 31 - 1)) {
    throw invalidArg(`timeoutMs must be a whole number of milliseconds from 1 to ${2 ** 31 - 1}`);
  }
  const env = opts.env ?? process.env;
  const file = which(argv[0]!, env['PATH']);
  const r = await callAsync(
    () =>
      native.exec({
        ...(opts.netns ? { netns: opts.netns } : {}),
        ...(opts.userns ? { userns: opts.userns } : {}),
        ...(opts.ownerUserns ? { ownerUserns: true } : {}),
        becomeRoot: opts.becomeRoot ?? true,
        file,
        argv: [...argv],
        env: envList(env),
        ...(opts.cwd ? { cwd: opts.cwd } : {}),
        ...(opts.stdio === 'inherit' ? { stdio: [0, 1, 2] as [number, number, number] } : {}),
        ...(opts.input !== undefined ? { input: opts.input } : {}),
        ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.maxOutput ? { maxOutput: opts.maxOutput } : {}),
      }),
    `running ${argv[0]}`,
  );
  return {
    pid: r.pid,
    exitCode: r.exitCode,
    signal: r.signal === null ? null : (SIGNALS[r.signal] ?? null),
    timedOut: r.timedOut,
    stdout: r.stdout.toString('utf8'),
    stderr: r.stderr.toString('utf8'),
  };
}

export interface ExecInNetnsOptions extends Omit<RunOptions, 'netns' | 'userns'>, PinDirs {
  /** Also join the netns's owning userns (default true). */
  userns?: boolean;
}

/**
 * Runs ARGV inside a pinned netns and, by default, the user namespace that
 * owns it (found from the netns itself with NS_GET_USERNS). A netns owned by
 * this process's own userns is joined alone, as `ip netns exec` does.
 */
export async function execInNetns(nameOrPath: string, argv: readonly string[], opts: ExecInNetnsOptions = {}): Promise<RunResult> {
  const pin = resolvePin(nameOrPath, opts.pinDir);
  const { userns = true, pinDir: _p, usernsPinDir: _u, ...rest } = opts;
  const info = await callAsync(() => native.inspectNs(pin.path, pin.named), `inspecting ${pin.path}`);
  if (!info.nsfs || NS_TYPES[info.type] !== 'net') {
    throw new NstoolError(`${pin.path} is not a network namespace`, {
      code: 'EINVAL',
      path: pin.path,
      hint: info.nsfs ? 'give the path of a netns' : 'a stale pin: `nstool delete` removes it',
    });
  }
  const joinOwner = userns && info.owner !== null && info.owner.ino !== hostUsernsInode();
  return runInNamespaces(argv, { ...rest, netns: pin.path, ownerUserns: joinOwner });
}
