// The one way nstool starts a program: a runtime, a CNI plugin, or a program
// inside a pod's namespaces. Every child goes through the native spawn
// helper (native/spawn/nstool-spawn.cc), so it
//   - keeps only fds 0-2 (Node's spawn passes on every fd without O_CLOEXEC),
//   - dies with this process (PR_SET_PDEATHSIG): a plugin or runtime that
//     outlived nstool could finish an ADD after a later DEL (except a
//     detached program, startDetached: a pod's network process, which lives
//     under a supervisor of its own and dies with that),
//   - joins namespaces on a single-threaded process, never on a Node thread,
// and it is started with posix_spawn (native/run.cc: a vfork, not a fork of
// all of Node) and waited for on the event loop, holding no pool thread.
import { ChildProcess, spawn, StdioOptions } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';
import { ErrorJSON, fromNative, invalidArg, NstoolError } from './errors.js';
import { spawnStart, type SpawnExit, type SpawnHandle } from './kernel/spawn.js';

/** One of a child's fds 0-2: an fd of ours, /dev/null, ours, or a pipe to capture or feed. */
export type StdioSlot = number | 'ignore' | 'inherit' | 'pipe';

export interface ProcessOptions {
  /** The whole environment; default: this process's, less NOTIFY_SOCKET. */
  env?: Record<string, string | undefined>;
  /** Working directory, entered after the namespaces (with the program's rights). */
  cwd?: string;
  /** Bytes for stdin (then closed); without it stdin is /dev/null. */
  input?: string | Buffer;
  /**
   * 'pipe' (default) captures stdout and stderr; 'inherit' hands over this
   * process's 0-2; three slots give each fd explicitly (a container's init).
   */
  stdio?: 'pipe' | 'inherit' | readonly [StdioSlot, StdioSlot, StdioSlot];
  /** SIGKILL after this many ms; rejects with ETIMEDOUT (a program that had ended by then keeps its result). */
  timeoutMs?: number;
  /** SIGKILL on abort; rejects with ABORT_ERR. */
  signal?: AbortSignal;
  /** Bytes kept of each captured stream (default 16 MiB); the rest is dropped and `truncated` set. */
  maxOutput?: number;
  /** Join this netns (a path) first. */
  netns?: string;
  /** Then join this userns (a path)... */
  userns?: string;
  /** ...or the userns that owns netns (NS_GET_USERNS). */
  ownerUserns?: boolean;
  /** Become root of the joined userns (default true when one is joined). */
  becomeRoot?: boolean;
  /**
   * Drop supplementary groups, in this userns, before joining any
   * (default true when a userns is joined: a userns with setgroups "deny"
   * would refuse it later and the caller's host groups would stay).
   */
  dropGroups?: boolean;
}

export interface ProcessResult {
  /** The program's argv (argv[0] as given). */
  argv: string[];
  /** The absolute path that was executed. */
  file: string;
  pid: number;
  /** null when killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Some captured output went beyond maxOutput and was dropped. */
  truncated: boolean;
}

/** A failure to start or finish a program; a timeout or abort carries what it printed so far. */
export class ProcessError extends NstoolError {
  readonly argv: string[];
  readonly result?: ProcessResult;

  constructor(message: string, f: ConstructorParameters<typeof NstoolError>[1] & { argv: string[]; result?: ProcessResult }) {
    super(message, f);
    this.name = 'ProcessError';
    this.argv = f.argv;
    if (f.result) this.result = f.result;
  }

  /** What the program printed stays out (it can be megabytes): how it ended is in. */
  override toJSON(): ErrorJSON {
    const { suppressed, ...base } = super.toJSON();
    const r = this.result;
    return {
      ...base,
      argv: this.argv,
      ...(r ? { exitCode: r.exitCode, signal: r.signal, truncated: r.truncated } : {}),
      ...(suppressed !== undefined ? { suppressed } : {}),
    };
  }
}

export const DEFAULT_MAX_OUTPUT = 16 << 20;
const MAX_TIMEOUT = 2 ** 31 - 1;
// An fd is a C int: a larger number would wrap onto another fd of ours (2^32 + 1 is 1).
const isFd = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= 2 ** 31 - 1;
const REPORT_FD = 3;

// ---- the helper --------------------------------------------------------

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let found: { key: string; path: string } | undefined;

/**
 * The spawn helper's path: NSTOOL_SPAWN, else next to the addon, in the
 * addon's order (a build in the package, then the shipped prebuild).
 */
export function spawnHelper(): string {
  // NSTOOL_SPAWN / NSTOOL_ADDON point at another build (the sanitizer build).
  const override = process.env['NSTOOL_SPAWN'];
  const addon = process.env['NSTOOL_ADDON'];
  const key = `${override}\0${addon}`;
  if (found?.key === key) return found.path;
  const tried = override
    ? [path.resolve(override)]
    : [
        ...(addon ? [path.join(path.dirname(path.resolve(addon)), 'nstool-spawn')] : []),
        path.join(root, 'build/Release/nstool-spawn'),
        path.join(root, 'build/Debug/nstool-spawn'),
        path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'nstool-spawn'),
      ];
  for (const p of tried) {
    try {
      if (statSync(p).isFile()) {
        accessSync(p, constants.X_OK);
        found = { key, path: p };
        return p;
      }
    } catch {
      // next
    }
  }
  throw new NstoolError(`the spawn helper (nstool-spawn) is not installed; looked at ${tried.join(', ')}`, {
    code: 'ERR_NSTOOL_NATIVE',
    hint:
      'reinstall without --ignore-scripts, or build it from source: apt-get install -y python3 make g++, then ' +
      '`npm rebuild nstool --build-from-source`; in a checkout, `npx node-gyp rebuild`',
  });
}

// ---- validation --------------------------------------------------------

function str(s: unknown, what: string): string {
  if (typeof s !== 'string' || s.includes('\0')) throw invalidArg(`${what} must be a string without NUL`);
  return s;
}

function abs(p: unknown, what: string): string {
  if (str(p, what) === '' || !(p as string).startsWith('/')) throw invalidArg(`${what} must be an absolute path`);
  return p as string;
}

/** Resolves a program name against PATH (this mount namespace's view). */
export function which(file: string, envPath = process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string {
  if (file.includes('/')) return path.resolve(file);
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, file);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  throw new NstoolError(`${file}: command not found in PATH`, {
    code: 'ENOENT',
    path: file,
    syscall: 'execve',
    hint: 'install the program or give its absolute path',
  });
}

/** The default child environment: ours, less NOTIFY_SOCKET (a runtime would hand it to a container and wait for READY). */
export function childEnv(base: Record<string, string | undefined> = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && k !== 'NOTIFY_SOCKET') env[k] = v;
  return env;
}

function checkEnv(env: Record<string, string | undefined>): Record<string, string> {
  if (typeof env !== 'object' || env === null) throw invalidArg('env must be an object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (!k || k.includes('=') || k.includes('\0') || typeof v !== 'string' || v.includes('\0')) {
      throw invalidArg(`bad environment variable "${k}"`);
    }
    out[k] = v;
  }
  return out;
}

function checkStdio(s: ProcessOptions['stdio']): [StdioSlot, StdioSlot, StdioSlot] | 'pipe' {
  if (s === undefined || s === 'pipe') return 'pipe';
  if (s === 'inherit') return ['inherit', 'inherit', 'inherit'];
  if (!Array.isArray(s) || s.length !== 3) throw invalidArg("stdio must be 'pipe', 'inherit' or three slots");
  for (const x of s) {
    const ok = typeof x === 'number' ? isFd(x) : x === 'ignore' || x === 'inherit' || x === 'pipe';
    if (!ok) throw invalidArg("each stdio slot must be an fd, 'ignore', 'inherit' or 'pipe'");
  }
  return [s[0], s[1], s[2]];
}

interface Plan {
  file: string;
  argv: string[];
  helperArgs: string[];
  env: Record<string, string>;
  stdio: [StdioSlot, StdioSlot, StdioSlot];
  input?: string | Buffer;
  timeoutMs?: number;
  maxOutput: number;
  o: ProcessOptions;
}

function plan(cmd: readonly string[] | { file: string; args?: readonly string[] }, o: ProcessOptions): Plan {
  if (typeof o !== 'object' || o === null) throw invalidArg('options must be an object');
  let argv: string[];
  let name: string;
  if (Array.isArray(cmd)) {
    if (cmd.length === 0) throw invalidArg('argv must be a non-empty array of strings without NUL');
    argv = cmd.map((a, i) => str(a, `argv[${i}]`));
    name = argv[0]!;
  } else {
    const c = cmd as { file: string; args?: readonly string[] };
    name = str(c?.file, 'file');
    if (c.args !== undefined && !Array.isArray(c.args)) throw invalidArg('args must be an array of strings');
    argv = [name, ...(c.args ?? []).map((a, i) => str(a, `args[${i}]`))];
  }
  if (name === '') throw invalidArg('the program name must not be empty');
  const env = checkEnv(o.env ?? childEnv());
  const cwd = o.cwd === undefined ? undefined : abs(o.cwd, 'cwd');
  const netns = o.netns === undefined ? undefined : abs(o.netns, 'netns');
  const userns = o.userns === undefined ? undefined : abs(o.userns, 'userns');
  if (userns && o.ownerUserns) throw invalidArg('give userns or ownerUserns, not both');
  if (o.ownerUserns && !netns) throw invalidArg('ownerUserns needs netns');
  const joinsUserns = !!userns || !!o.ownerUserns;
  const becomeRoot = o.becomeRoot ?? joinsUserns;
  if (becomeRoot && !joinsUserns) throw invalidArg('becomeRoot needs a user namespace to join');
  const dropGroups = o.dropGroups ?? joinsUserns;
  if (o.timeoutMs !== undefined && (!Number.isSafeInteger(o.timeoutMs) || o.timeoutMs < 1 || o.timeoutMs > MAX_TIMEOUT)) {
    throw invalidArg(`timeoutMs must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT}`);
  }
  const maxOutput = o.maxOutput ?? DEFAULT_MAX_OUTPUT;
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) throw invalidArg('maxOutput must be a whole number of bytes');
  if (o.input !== undefined && typeof o.input !== 'string' && !Buffer.isBuffer(o.input)) throw invalidArg('input must be a string or a Buffer');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArg('signal must be an AbortSignal');
  const s = checkStdio(o.stdio);
  const stdio: [StdioSlot, StdioSlot, StdioSlot] = s === 'pipe' ? [o.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] : s;
  if (o.input !== undefined && stdio[0] !== 'pipe') throw invalidArg("input needs stdin to be a 'pipe'");
  const file = which(name, env['PATH']);
  const helperArgs = [
    '--report-fd', String(REPORT_FD),
    '--parent', String(process.pid),
    ...(dropGroups ? ['--drop-groups'] : []),
    ...(netns ? ['--netns', netns] : []),
    ...(userns ? ['--userns', userns] : o.ownerUserns ? ['--owner-userns'] : []),
    ...(becomeRoot ? ['--root'] : []),
    ...(cwd ? ['--cwd', cwd] : []),
    '--', file, ...argv,
  ];
  return {
    file, argv, helperArgs, env, stdio, maxOutput, o,
    ...(o.input !== undefined ? { input: o.input } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
}

// ---- the helper's report -----------------------------------------------

interface Step {
  syscall: string;
  /** The path the step acted on. */
  at?: (p: Plan) => string | undefined;
  hints?: Record<string, string>;
}

const NOT_A_NAMESPACE = { EINVAL: 'the path is not a namespace of the expected type' };

/** The helper's steps (native/spawn/nstool-spawn.cc), by the name it reports. */
const STEPS: Record<string, Step> = {
  'open-netns': { syscall: 'open', at: (p) => p.o.netns },
  'open-userns': { syscall: 'open', at: (p) => p.o.userns },
  'ns-get-userns': { syscall: 'ioctl', at: (p) => p.o.netns, hints: NOT_A_NAMESPACE },
  'setns-net': { syscall: 'setns', at: (p) => p.o.netns, hints: NOT_A_NAMESPACE },
  // With ownerUserns, the userns is the one that owns the netns.
  'setns-user': { syscall: 'setns', at: (p) => p.o.userns ?? p.o.netns, hints: NOT_A_NAMESPACE },
  chdir: {
    syscall: 'chdir',
    at: (p) => p.o.cwd,
    hints: { ENOENT: 'the working directory does not exist', EACCES: 'the user the program runs as cannot reach the working directory' },
  },
  execve: {
    syscall: 'execve',
    at: (p) => p.file,
    hints: {
      ENOENT: 'the program or its interpreter is missing',
      EACCES: "the user the program runs as (in a pod: the pod's root) cannot execute it",
    },
  },
  'keeper-connect': { syscall: 'connect', hints: { ENOENT: "no keeper runs for this user: the pod's namespace is gone", ECONNREFUSED: "no keeper runs for this user: the pod's namespace is gone" } },
  'keeper-hold': { syscall: 'hold', hints: { ENOENT: 'the keeper holds no pin of that name' } },
  usage: { syscall: 'nstool-spawn', hints: { EINVAL: 'nstool and its spawn helper disagree: rebuild the package (`npx node-gyp rebuild`)' } },
};

/** The helper's "STEP ERRNO" line as a ProcessError with Node's fields. */
function reportError(line: string, p: Plan): ProcessError {
  const m = /^([a-z_-]+) (\d+)\n?$/.exec(line);
  if (!m) {
    return new ProcessError(`running ${p.argv[0]}: the spawn helper reported "${line.slice(0, 100)}"`, { code: 'ERR_NSTOOL_NATIVE', argv: p.argv });
  }
  const errno = Number(m[2]);
  const step = STEPS[m[1]!] ?? { syscall: m[1]! };
  const at = step.at?.(p);
  const [code, desc] = getSystemErrorMap().get(-errno) ?? ['EIO', 'unknown error'];
  const message = `${code}: ${desc}, ${step.syscall}${at ? ` '${at}'` : ''}`;
  // fromNative knows the hints for the common codes.
  const { hint } = fromNative(Object.assign(new Error(message), { code, syscall: step.syscall }), undefined, step.hints) as NstoolError;
  return new ProcessError(`running ${p.argv[0]}: ${message}`, {
    code,
    errno: -errno,
    syscall: step.syscall,
    ...(at ? { path: at } : {}),
    ...(hint ? { hint } : {}),
    argv: p.argv,
  });
}

// ---- running -----------------------------------------------------------

const envList = (env: Record<string, string>): string[] => Object.entries(env).map(([k, v]) => `${k}=${v}`);

let signalNames: Map<number, NodeJS.Signals> | undefined;
function signalName(n: number): NodeJS.Signals | null {
  if (!n) return null;
  signalNames ??= new Map(Object.entries(osConstants.signals).map(([k, v]) => [v, k as NodeJS.Signals]));
  return signalNames.get(n) ?? null;
}

/**
 * Starts the spawn helper natively (posix_spawn: a vfork, where Node's own
 * spawn forks all of Node) and calls ON_EXIT once it ended, on the loop.
 */
function startHelper(helper: string, args: string[], env: Record<string, string>, stdio: readonly StdioSlot[], input: string | Buffer | undefined, maxOutput: number, onExit: (x: SpawnExit) => void): SpawnHandle {
  const bytes = input === undefined ? null : typeof input === 'string' ? Buffer.from(input) : input;
  return spawnStart(helper, [helper, ...args], envList(env), [stdio[0]!, stdio[1]!, stdio[2]!], bytes, maxOutput, onExit);
}

/**
 * Runs a program through the spawn helper and waits for it. A non-zero exit
 * is a result; failing to start it (a missing program, a namespace that
 * cannot be joined), a timeout and an abort are ProcessErrors.
 */
export function runProcess(cmd: readonly string[] | { file: string; args?: readonly string[] }, opts: ProcessOptions = {}): Promise<ProcessResult> {
  let p: Plan;
  let helper: string;
  try {
    p = plan(cmd, opts);
    helper = spawnHelper();
  } catch (err) {
    return Promise.reject(err);
  }
  const sig = opts.signal;
  if (sig?.aborted) return Promise.reject(abortError(p, undefined, sig.reason));

  return new Promise<ProcessResult>((resolve, reject) => {
    let why: 'timeout' | 'abort' | undefined;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => kill('abort');
    const onExit = (x: SpawnExit) => {
      if (timer) clearTimeout(timer);
      sig?.removeEventListener('abort', onAbort);
      const result: ProcessResult = {
        argv: p.argv,
        file: p.file,
        pid: child.pid,
        exitCode: x.exitCode,
        signal: signalName(x.signal),
        stdout: x.stdout.toString('utf8'),
        stderr: x.stderr.toString('utf8'),
        truncated: x.truncated,
      };
      // Written only when the helper failed before execve.
      if (x.report) return reject(reportError(x.report, p));
      // A timer that fired after the program ended (its exit not read yet)
      // killed nothing: what the program did stands.
      if (why === 'timeout' && x.exitCode === null && x.signal === osConstants.signals.SIGKILL) {
        return reject(
          new ProcessError(`${p.argv[0]} did not finish within ${p.timeoutMs} ms and was killed`, {
            code: 'ETIMEDOUT',
            argv: p.argv,
            result,
            hint: 'raise timeoutMs, or look at what the program waits for',
          }),
        );
      }
      if (why === 'abort') return reject(abortError(p, result, sig?.reason));
      resolve(result);
    };
    let child: SpawnHandle;
    try {
      child = startHelper(helper, p.helperArgs, p.env, p.stdio, p.input, p.maxOutput, onExit);
    } catch (err) {
      reject(spawnError(p, err));
      return;
    }
    const kill = (w: 'timeout' | 'abort') => {
      why ??= w;
      child.kill();
    };
    if (p.timeoutMs !== undefined) timer = setTimeout(() => kill('timeout'), p.timeoutMs);
    sig?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(p: Plan, result: ProcessResult | undefined, reason: unknown): ProcessError {
  const e = new ProcessError(`${p.argv[0]} was aborted`, { code: 'ABORT_ERR', argv: p.argv, ...(result ? { result } : {}), cause: reason });
  e.name = 'AbortError'; // as Node's own aborts: still a ProcessError (instanceof)
  return e;
}

/** Hints for a start that failed in the core (before the helper ran). */
const START_HINTS: Record<string, string> = {
  EMFILE: 'this process has too many open files: close some, or raise its RLIMIT_NOFILE',
  ENFILE: 'the system has too many open files',
  EBADF: 'an fd given in stdio is not open',
  EAGAIN: 'the system is out of processes or memory',
  ENOMEM: 'the system is out of processes or memory',
  E2BIG: 'the arguments and environment are too long (one argument at most 128 KiB, all of them a quarter of the stack limit)',
  EACCES: 'the spawn helper cannot be executed: rebuild the package (`npx node-gyp rebuild`)',
  ENOENT: 'the spawn helper is missing: rebuild the package (`npx node-gyp rebuild`)',
};

function spawnError(p: Plan, e: unknown): ProcessError {
  const n = e as NodeJS.ErrnoException;
  const code = n?.code ?? 'ERR_NSTOOL_NATIVE';
  // The core's own words, without the generic hint callSync added to them.
  const said = e instanceof NstoolError && e.cause instanceof Error ? e.cause.message : (n?.message ?? String(e));
  // errno, syscall and path as the core (or Node's spawn) gave them.
  return new ProcessError(`cannot start the spawn helper for ${p.argv[0]}: ${said}`, {
    code,
    ...(typeof n?.errno === 'number' ? { errno: n.errno } : {}),
    syscall: typeof n?.syscall === 'string' ? n.syscall : 'spawn',
    ...(n?.path ? { path: n.path } : {}),
    hint: START_HINTS[code] ?? 'rebuild the package (`npx node-gyp rebuild`)',
    argv: p.argv,
    cause: e,
  });
}

// ---- detached programs ---------------------------------------------------

export interface DetachedOptions {
  /** The whole environment; default: this process's, less NOTIFY_SOCKET. */
  env?: Record<string, string | undefined>;
  /** The program's stdout and stderr: an fd of ours (a log file), or /dev/null. */
  output?: number | 'ignore';
  /** Fds of ours the program gets as 4, 5, ... (in this order). */
  fds?: readonly number[];
  /** The program writes to this fd (above the others) once it is ready. */
  readyFd: number;
  /** The keeper holds the exit pipe while pin NAME exists: the program ends with it. */
  hold?: { socket: string; name: string };
  /**
   * The supervisor refuses the program's connects and sends to the host's
   * loopback addresses (seccomp user notification; port 53 excepted).
   */
  denyLoopback?: boolean;
  /** Until ready; then the program and its supervisor are killed (ETIMEDOUT). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface DetachedProcess {
  argv: string[];
  file: string;
  pid: number;
}

/** A detached program that ended, or failed to start, before it was ready. */
export const NOT_READY = 'ERR_NSTOOL_NOT_READY';

function goneOrZombie(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

async function waitGone(pid: number, ms: number): Promise<void> {
  for (let waited = 0; waited < ms && !goneOrZombie(pid); waited += 10) await new Promise((r) => setTimeout(r, 10));
}

/**
 * Starts a program that outlives this process (a pod's network process):
 * in its own session, under a supervisor (the spawn helper) it dies with,
 * with fds 0-2, the given fds and a ready pipe only. Resolves once the
 * program wrote to its ready fd; rejects (leaving nothing running) when it
 * failed to start, ended first, timed out or was aborted.
 */
export function startDetached(cmd: readonly string[], o: DetachedOptions): Promise<DetachedProcess> {
  let p: Plan;
  let helper: string;
  const fds = o.fds ?? [];
  try {
    if (!Array.isArray(fds)) throw invalidArg('fds must be an array of fds');
    const out = o.output ?? 'ignore';
    if (out !== 'ignore' && !isFd(out)) throw invalidArg("output must be an fd or 'ignore'");
    p = plan(cmd, { ...(o.env ? { env: o.env } : {}), stdio: ['ignore', out, out], ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });
    for (const fd of fds) if (!isFd(fd)) throw invalidArg('fds must be fds');
    const top = REPORT_FD + fds.length;
    if (!Number.isSafeInteger(o.readyFd) || o.readyFd <= top || o.readyFd > 1024) throw invalidArg(`readyFd must be above ${top}`);
    if (o.hold) {
      abs(o.hold.socket, 'hold.socket');
      str(o.hold.name, 'hold.name');
      if (!o.hold.name || /[\s/]/.test(o.hold.name)) throw invalidArg('hold.name must be a pin name');
    }
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArg('signal must be an AbortSignal');
    if (o.denyLoopback !== undefined && typeof o.denyLoopback !== 'boolean') throw invalidArg('denyLoopback must be a boolean');
    helper = spawnHelper();
    p.helperArgs = [
      '--report-fd', String(REPORT_FD),
      '--detach', '--ready-fd', String(o.readyFd),
      ...(fds.length ? ['--keep-fds', String(top)] : []),
      ...(o.hold ? ['--hold', o.hold.socket, o.hold.name] : []),
      ...(o.denyLoopback ? ['--deny-loopback'] : []),
      '--', p.file, ...p.argv,
    ];
  } catch (err) {
    return Promise.reject(err);
  }
  const sig = o.signal;
  if (sig?.aborted) return Promise.reject(abortError(p, undefined, sig.reason));

  return new Promise<DetachedProcess>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(helper, p.helperArgs, { env: p.env, stdio: [...p.stdio, 'pipe', ...fds] as StdioOptions });
    } catch (err) {
      reject(spawnError(p, err));
      return;
    }
    const report$ = child.stdio[REPORT_FD] as Readable;
    let text = '';
    let pid = 0;
    let done = false;
    let why: 'timeout' | 'abort' | undefined;
    const timer = p.timeoutMs !== undefined ? setTimeout(() => fail(undefined, 'timeout'), p.timeoutMs) : undefined;
    const onAbort = () => fail(undefined, 'abort');
    sig?.addEventListener('abort', onAbort, { once: true });
    const finish = () => {
      done = true;
      if (timer) clearTimeout(timer);
      sig?.removeEventListener('abort', onAbort);
      report$.destroy();
    };
    // Kills the supervisor (the program dies with it) and waits for both.
    function fail(err: ProcessError | undefined, w?: 'timeout' | 'abort'): void {
      if (done) return;
      why ??= w;
      finish();
      child.kill('SIGKILL');
      const e =
        err ??
        (why === 'timeout'
          ? new ProcessError(`${p.argv[0]} was not ready within ${p.timeoutMs} ms and was killed`, { code: 'ETIMEDOUT', argv: p.argv, hint: 'raise timeoutMs, or look at its log' })
          : abortError(p, undefined, sig?.reason));
      const wait = child.exitCode === null && child.signalCode === null ? new Promise((r) => child.once('exit', r)) : Promise.resolve();
      void wait.then(() => (pid ? waitGone(pid, 5000) : undefined)).then(() => reject(e));
    }
    const onLine = (line: string) => {
      let m: RegExpExecArray | null;
      if ((m = /^pid ([1-9]\d{0,9})$/.exec(line))) {
        pid = Number(m[1]);
      } else if (line === 'ready' && pid) {
        finish();
        // It lives on without us: neither the helper nor its pipe keeps our loop alive.
        child.unref();
        resolve({ argv: p.argv, file: p.file, pid });
      } else if ((m = /^(exit|signal) (\d{1,3})$/.exec(line))) {
        const how = m[1] === 'exit' ? `exited with ${m[2]}` : `was killed by signal ${m[2]}`;
        fail(new ProcessError(`${p.argv[0]} ${how} before it was ready`, { code: NOT_READY, argv: p.argv }));
      } else {
        fail(reportError(line, p));
      }
    };
    report$.on('data', (b: Buffer) => {
      text += b.toString('latin1');
      for (let i; !done && (i = text.indexOf('\n')) >= 0; ) {
        const line = text.slice(0, i);
        text = text.slice(i + 1);
        onLine(line);
      }
    });
    child.on('error', (e) => fail(spawnError(p, e)));
    child.on('exit', () => {
      // The supervisor reports why before it exits; silence means it was killed.
      setImmediate(() => fail(new ProcessError(`the supervisor of ${p.argv[0]} ended before it was ready`, { code: NOT_READY, argv: p.argv })));
    });
  });
}

/**
 * Ends PID if it is still the process that started at START (field 22 of
 * /proc/PID/stat), through a pidfd: SIGTERM, SIGKILL after GRACE_MS, and
 * waits until it is gone. 'gone' when it (or that pid's process) was not there.
 */
export async function killProcess(pid: number, start: string, graceMs = 2000): Promise<'killed' | 'gone'> {
  if (!Number.isSafeInteger(pid) || pid < 1 || pid > 2 ** 31 - 1) throw invalidArg('pid must be a process id');
  if (typeof start !== 'string' || !/^\d{1,20}$/.test(start)) throw invalidArg('start must be a start time in clock ticks');
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > 600_000) throw invalidArg('graceMs must be a whole number of ms');
  const helper = spawnHelper();
  const argv = [helper];
  return new Promise((resolve, reject) => {
    try {
      startHelper(helper, ['--report-fd', String(REPORT_FD), '--kill', String(pid), start, String(graceMs)], {}, ['ignore', 'pipe', 'ignore'], undefined, 64, (x) => {
        if (x.report) return reject(reportError(x.report, { argv, file: helper, o: {} } as Plan));
        const word = x.stdout.toString('latin1').trim();
        if (word === 'killed' || word === 'gone') return resolve(word);
        reject(new ProcessError(`the spawn helper said ${JSON.stringify(word.slice(0, 40))} to --kill`, { code: 'ERR_NSTOOL_NATIVE', argv }));
      });
    } catch (e) {
      reject(spawnError({ argv } as Plan, e));
    }
  });
}
