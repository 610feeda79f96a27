// Running programs inside namespaces, through the process runner
// (src/process.ts): its spawn helper joins the namespaces on a process of its
// own, never on a Node thread (namespaces are per thread and the libuv pool
// would carry them into unrelated work).
import { NstoolError } from './errors.js';
import { inspectNs } from './kernel/ns.js';
import { PinDirs, resolvePin } from './netns.js';
import { childEnv, ProcessError, ProcessResult, runProcess } from './process.js';
import { currentMode } from './rootless/mode.js';

export { which } from './process.js';

export interface RunOptions {
  /** Namespace files to join (netns first, then userns). */
  netns?: string;
  userns?: string;
  /** Join the userns that owns netns instead of a userns file. */
  ownerUserns?: boolean;
  /** After joining the userns, become its root (default true, as nsenter). */
  becomeRoot?: boolean;
  /** Drop supplementary groups before joining (default true when a userns is joined). */
  dropGroups?: boolean;
  /** Environment; defaults to this process's, less NOTIFY_SOCKET. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Bytes for stdin; stdin is /dev/null otherwise. */
  input?: string | Buffer;
  /** "inherit" hands this process's 0/1/2 to the program. */
  stdio?: 'pipe' | 'inherit';
  /** SIGKILL after this long; the result then says timedOut. */
  timeoutMs?: number;
  /** SIGKILL on abort; rejects with ABORT_ERR. */
  signal?: AbortSignal;
  /** Bytes kept of stdout and of stderr (default 64 MiB). */
  maxOutput?: number;
}

export interface RunResult {
  pid: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** Output beyond maxOutput was dropped. */
  truncated: boolean;
}

const MAX_OUTPUT = 64 << 20;

function toRun(r: ProcessResult, timedOut: boolean): RunResult {
  return { pid: r.pid, exitCode: r.exitCode, signal: r.signal, timedOut, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated };
}

/** Runs ARGV with the given namespaces joined; resolves when it exits. */
export async function runInNamespaces(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const joinsUserns = !!opts.userns || !!opts.ownerUserns;
  try {
    const r = await runProcess(argv, {
      env: childEnv(opts.env ?? process.env),
      maxOutput: opts.maxOutput ?? MAX_OUTPUT,
      ...(opts.netns ? { netns: opts.netns } : {}),
      ...(opts.userns ? { userns: opts.userns } : {}),
      ...(opts.ownerUserns ? { ownerUserns: true } : {}),
      // Becoming root needs a userns to be root of.
      ...(joinsUserns ? { becomeRoot: opts.becomeRoot ?? true } : {}),
      ...(opts.dropGroups !== undefined ? { dropGroups: opts.dropGroups } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.stdio === 'inherit' ? { stdio: 'inherit' as const } : {}),
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return toRun(r, false);
  } catch (err) {
    // A timeout is a result here, as it always was.
    if (err instanceof ProcessError && err.code === 'ETIMEDOUT' && err.result) return toRun(err.result, true);
    throw err;
  }
}

export interface ExecInNetnsOptions extends Omit<RunOptions, 'netns' | 'userns' | 'dropGroups'>, PinDirs {
  /** Also join the netns's owning userns (default true). */
  userns?: boolean;
}

/**
 * Runs ARGV inside a pinned netns and, by default, the user namespace that
 * owns it (found from the netns itself with NS_GET_USERNS). A netns owned by
 * this process's own userns is joined alone, as `ip netns exec` does. The
 * caller's supplementary groups are dropped first, while that is still
 * allowed (a pod userns with setgroups "deny" refuses it later).
 */
export async function execInNetns(nameOrPath: string, argv: readonly string[], opts: ExecInNetnsOptions = {}): Promise<RunResult> {
  if (currentMode() === 'rootless') return (await import('./rootless/netns.js')).execInNetnsRootless(nameOrPath, argv, opts);
  const pin = resolvePin(nameOrPath, opts.pinDir);
  const { userns = true, pinDir: _p, usernsPinDir: _u, ...rest } = opts;
  const info = await inspectNs(pin.path, { follow: !pin.named, context: `inspecting ${pin.path}` });
  if (info.state !== 'ns' || info.type !== 'net') {
    throw new NstoolError(`${pin.path} is not a network namespace`, {
      code: 'EINVAL',
      path: pin.path,
      hint: info.state === 'ns' ? 'give the path of a netns' : 'a stale pin: `nstool delete` removes it',
    });
  }
  const joinOwner = userns && info.owner !== null && !info.owner.host;
  return runInNamespaces(argv, { ...rest, netns: pin.path, ownerUserns: joinOwner, dropGroups: true });
}
