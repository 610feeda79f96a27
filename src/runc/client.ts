// A client for an OCI runtime binary (runc, crun): global flags held once,
// argv from the pure builders in args.ts, spawned with argument arrays, and
// every failure turned into a RuntimeError carrying the runtime's own words.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { abortError } from '../abort.js';
import { invalidArg, NstoolError } from '../errors.js';
import { childEnv, runProcess } from '../process.js';
import { currentMode } from '../rootless/mode.js';
import { rootlessPodDirs } from '../rootless/pod-dirs.js';
import { ensureRuntimeDirs, runtimeDirs } from '../rootless/runtime-dir.js';
import { channels, traced } from '../trace.js';
import {
  createArgs,
  CreateOptions,
  deleteArgs,
  execArgs,
  ExecArgsOptions,
  featuresArgs,
  globalArgs,
  killArgs,
  listArgs,
  startArgs,
  stateArgs,
  versionArgs,
} from './args.js';
import { lastLogError, RuntimeError } from './error.js';
import { assertIdmapGate } from './idmap-gate.js';

export interface RuncClientOptions {
  /** Runtime binary: a name looked up in PATH or a path (default "runc"). */
  binary?: string;
  /** State dir (runc --root); the runtime's default when omitted. */
  root?: string;
  /**
   * Where per-command JSON logs and exec process files live while a command
   * runs (default /run/nstool/runtime-logs, 0700). Files of processes that
   * died before removing them are swept by later calls (gcRuntimeFiles).
   */
  logDir?: string;
  /** Default time limit for one command, in ms (default 60000). */
  timeoutMs?: number;
  systemdCgroup?: boolean;
  /**
   * Run the runtime in its rootless mode (runc --rootless true). Default:
   * true when nstool itself runs rootless; the default logDir is then
   * $XDG_RUNTIME_DIR/nstool/runtime-logs.
   */
  rootless?: boolean;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Stdio for the container's init: fds (files the container's root can open), or "ignore" for /dev/null. */
export type ContainerStdio = [number | 'ignore', number | 'ignore', number | 'ignore'];

export interface CreateCallOptions extends CreateOptions, CallOptions {
  stdio?: ContainerStdio;
  /** Skip the idmap gate (only for a runtime already known to support idmapped mounts). */
  skipIdmapGate?: boolean;
}

export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'stopped' | 'paused' | string;
  bundle: string;
  rootfs?: string;
  created?: string;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

export interface ContainerListEntry {
  id: string;
  pid: number;
  status: string;
  bundle: string;
  created?: string;
  [k: string]: unknown;
}

export interface RuntimeVersion {
  /** "runc", "crun", ... (first word of the first line). */
  name: string;
  version: string;
  commit?: string;
  spec?: string;
  raw: string;
}

/** An OCI process object for `exec --process`. */
export interface OciProcess {
  args: string[];
  env?: string[];
  cwd: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  terminal?: boolean;
  [k: string]: unknown;
}

export interface ExecOptions extends CallOptions {
  env?: Record<string, string>;
  cwd?: string;
  user?: string;
  input?: string | Buffer;
  /** Give the process this stdio instead of capturing its output. */
  stdio?: ContainerStdio;
}

export interface ExecResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunSpec extends CallOptions {
  command: string;
  args: string[];
  /** Skip --root/--log (for --version). */
  bare?: boolean;
  stdio?: ContainerStdio;
  input?: string | Buffer;
  /** Resolve with the exit status instead of throwing on a non-zero exit (exec). */
  allowFailure?: boolean;
}

interface RunOutput {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  argv: string[];
}

const MAX_OUTPUT = 16 << 20;

export const DEFAULT_RUNTIME_LOG_DIR = '/run/nstool/runtime-logs';

export class RuncClient {
  readonly binary: string;
  readonly root?: string;
  readonly logDir: string;
  readonly timeoutMs: number;
  readonly systemdCgroup: boolean;
  readonly rootless: boolean;

  constructor(opts: RuncClientOptions = {}) {
    this.binary = opts.binary ?? 'runc';
    if (typeof this.binary !== 'string' || this.binary === '' || this.binary.includes('\0')) throw invalidArg('binary must be a non-empty string');
    if (opts.root !== undefined) {
      if (!path.isAbsolute(opts.root)) throw invalidArg('root must be an absolute path');
      this.root = opts.root;
    }
    if (opts.rootless !== undefined && typeof opts.rootless !== 'boolean') throw invalidArg('rootless must be a boolean', 'ERR_INVALID_ARG_TYPE');
    this.rootless = opts.rootless ?? currentMode() === 'rootless';
    // Without root the runtime's files live in the user's own runtime dir.
    this.logDir = opts.logDir ?? defaultLogDir();
    if (typeof this.logDir !== 'string' || !path.isAbsolute(this.logDir) || this.logDir.includes('\0')) {
      throw invalidArg('logDir must be an absolute path');
    }
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs <= 0) throw invalidArg('timeoutMs must be a positive integer');
    this.systemdCgroup = !!opts.systemdCgroup;
  }

  async version(o: CallOptions = {}): Promise<RuntimeVersion> {
    const r = await this.run({ ...o, command: 'version', args: versionArgs(), bare: true });
    return parseVersion(r.stdout);
  }

  /** The runtime's `features` document (runc 1.1+, crun 1.5+). */
  async features(o: CallOptions = {}): Promise<Record<string, unknown>> {
    const r = await this.run({ ...o, command: 'features', args: featuresArgs() });
    return parseJson(r.stdout, r.argv, 'features') as Record<string, unknown>;
  }

  /**
   * Creates a container from BUNDLE. A spec asking for idmapped mounts is
   * refused unless the runtime says it supports them (nothing is created).
   */
  async create(id: string, bundle: string, o: CreateCallOptions = {}): Promise<void> {
    const args = createArgs(id, bundle, o);
    if (!o.skipIdmapGate) {
      const spec = await readSpec(bundle);
      if (spec) await assertIdmapGate(this, spec);
    }
    await this.run({ ...o, command: 'create', args, stdio: o.stdio ?? ['ignore', 'ignore', 'ignore'] });
  }

  async start(id: string, o: CallOptions = {}): Promise<void> {
    await this.run({ ...o, command: 'start', args: startArgs(id) });
  }

  async state(id: string, o: CallOptions = {}): Promise<ContainerState> {
    const r = await this.run({ ...o, command: 'state', args: stateArgs(id) });
    return parseJson(r.stdout, r.argv, 'state') as ContainerState;
  }

  async kill(id: string, signal: string | number = 'SIGTERM', o: CallOptions & { all?: boolean } = {}): Promise<void> {
    await this.run({ ...o, command: 'kill', args: killArgs(id, signal, { all: !!o.all }) });
  }

  async delete(id: string, o: CallOptions & { force?: boolean } = {}): Promise<void> {
    await this.run({ ...o, command: 'delete', args: deleteArgs(id, { force: !!o.force }) });
  }

  async list(o: CallOptions = {}): Promise<ContainerListEntry[]> {
    const r = await this.run({ ...o, command: 'list', args: listArgs() });
    // runc prints "null" when there are no containers.
    return (parseJson(r.stdout, r.argv, 'list') as ContainerListEntry[] | null) ?? [];
  }

  /**
   * Runs a process in a running container and waits for it. A non-zero exit
   * of the process is a result, not an error; a failure of the runtime is.
   */
  async exec(id: string, proc: readonly string[] | OciProcess, o: ExecOptions = {}): Promise<ExecResult> {
    let processFile: string | undefined;
    let a: ExecArgsOptions;
    if (Array.isArray(proc)) {
      a = { argv: proc as string[], ...(o.env ? { env: o.env } : {}), ...(o.cwd ? { cwd: o.cwd } : {}), ...(o.user ? { user: o.user } : {}) };
    } else {
      const p = proc as OciProcess;
      if (!p || !Array.isArray(p.args) || p.args.length === 0 || typeof p.cwd !== 'string') {
        throw invalidArg('process must have a non-empty args array and a cwd');
      }
      processFile = await this.tempFile('process');
      await writeFile(processFile, JSON.stringify(p), { mode: 0o600, flag: 'wx' });
      a = { processFile };
    }
    try {
      const args = execArgs(id, a);
      const r = await this.run({
        ...o,
        command: 'exec',
        args,
        allowFailure: true,
        ...(o.stdio ? { stdio: o.stdio } : {}),
        ...(o.input !== undefined ? { input: o.input } : {}),
      });
      return { exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    } finally {
      if (processFile) await rm(processFile, { force: true });
    }
  }

  /** A fresh file name in logDir, named with our pid and start time so a later sweep knows whose it is. */
  private async tempFile(kind: 'log' | 'process'): Promise<string> {
    await prepareLogDir(this.logDir);
    return path.join(this.logDir, `${process.pid}-${selfStartTime()}-${kind}-${randomBytes(6).toString('hex')}.json`);
  }

  private async run(s: RunSpec): Promise<RunOutput> {
    if (s.signal?.aborted) throw aborted([this.binary, s.command], s.signal.reason);
    const log = s.bare ? undefined : await this.tempFile('log');
    const argv = [
      ...(s.bare ? [] : globalArgs({ ...(this.root ? { root: this.root } : {}), ...(log ? { log } : {}), systemdCgroup: this.systemdCgroup, rootless: this.rootless })),
      ...s.args,
    ];
    try {
      // Made here, 0600: the runtime would create it world-readable, and it may hold the spec's env.
      if (log) await writeFile(log, '', { mode: 0o600, flag: 'wx' });
      const out = await traced(channels.runtimeCall, () => ({ binary: this.binary, command: s.command, argv }), () => this.spawn(argv, s));
      if (out.exitCode === 0 || (s.allowFailure && out.exitCode !== null && !(await runtimeFailed(log)))) return out;
      const logText = log ? await readFile(log, 'utf8').catch(() => '') : '';
      const msg = lastLogError(logText) ?? lastLine(out.stderr);
      throw new RuntimeError({
        command: s.command,
        runtimeMessage: msg,
        exitCode: out.exitCode,
        signal: out.signal,
        argv: [this.binary, ...argv],
        stderr: out.stderr,
      });
    } finally {
      if (log) await rm(log, { force: true });
    }
  }

  private async spawn(argv: string[], s: RunSpec): Promise<RunOutput> {
    const timeoutMs = s.timeoutMs ?? this.timeoutMs;
    const full = [this.binary, ...argv];
    try {
      // The container's init keeps the stdio it is given; without it, output is captured.
      const r = await runProcess({ file: this.binary, args: argv }, {
        env: childEnv(),
        timeoutMs,
        maxOutput: MAX_OUTPUT,
        ...(s.stdio ? { stdio: s.stdio } : {}),
        ...(s.input !== undefined ? { input: s.input } : {}),
        ...(s.signal ? { signal: s.signal } : {}),
      });
      return { exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr, argv: full };
    } catch (err) {
      // ProcessErrors, and which()'s ENOENT for a name not in PATH.
      if (!(err instanceof NstoolError)) throw err;
      if (err.code === 'ABORT_ERR') throw aborted(full, err);
      if (err.code === 'ETIMEDOUT') {
        throw new NstoolError(`${full.join(' ')} did not finish within ${timeoutMs} ms and was killed`, {
          code: 'ETIMEDOUT',
          hint: 'the runtime may be stuck on a hook or a lock; `runc list` and `runc state` show what it left',
          cause: err,
        });
      }
      if (err.syscall === 'execve') {
        throw new NstoolError(`cannot run ${this.binary}: ${err.message}`, {
          code: err.code,
          path: this.binary,
          syscall: 'execve',
          hint: 'install the runtime (apt-get install runc) or give its path as binary',
          cause: err,
        });
      }
      throw err;
    }
  }
}

function aborted(argv: string[], cause?: unknown): NstoolError {
  return abortError(`${argv.join(' ')} was aborted`, cause);
}

// ---- files the runtime commands leave while they run --------------------

const FILE_RE = /^(\d+)-(\d+)-(log|process)-[0-9a-f]{12}\.json$/;
const SWEEP_EVERY_MS = 60_000;
const lastSweep = new Map<string, number>();
let startTime: string | undefined;

/** Field 22 of /proc/PID/stat (start time in clock ticks), or null when PID is gone or a zombie. */
function processStartTime(pid: number | 'self'): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? null : (f[19] ?? null);
  } catch {
    return null;
  }
}

function selfStartTime(): string {
  return (startTime ??= processStartTime('self') ?? '0');
}

/** The logDir a client gets by default: root's, or the user's own without root. */
export function defaultLogDir(): string {
  return currentMode() === 'rootless' ? rootlessPodDirs().runtimeLogs : DEFAULT_RUNTIME_LOG_DIR;
}

/** Makes DIR (0700 when it is the default one, under a traversable /run/nstool) and sweeps it now and then. */
async function prepareLogDir(dir: string): Promise<void> {
  const last = lastSweep.get(dir);
  if (last !== undefined && Date.now() - last < SWEEP_EVERY_MS) return;
  lastSweep.set(dir, Date.now());
  const userDefault = dir !== DEFAULT_RUNTIME_LOG_DIR && dir === defaultLogDir();
  if (dir === DEFAULT_RUNTIME_LOG_DIR || userDefault) {
    // /run/nstool also holds bundles a pod's root must traverse (0711: passable, not listable);
    // the user's own nstool dir is the user's alone.
    if (userDefault) ensureRuntimeDirs(runtimeDirs());
    else await mkdir(path.dirname(dir), { recursive: true, mode: 0o711 });
    await mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const st = await lstat(dir);
    if (!st.isDirectory() || st.uid !== process.geteuid?.()) {
      throw new NstoolError(`${dir} is not a directory of ours`, { code: 'ENOTDIR', path: dir, hint: 'remove it; nstool makes it again' });
    }
    if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
  } else {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  await gcRuntimeFiles(dir);
}

/**
 * Removes the runtime log and process files in DIR whose process is gone (a
 * killed nstool never removed them). Files of living processes, and every
 * name nstool does not make, are left alone. Returns the removed paths.
 */
export async function gcRuntimeFiles(dir: string = defaultLogDir()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = FILE_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid < 1) continue;
    if (processStartTime(pid) === m[2]) continue;
    const p = path.join(dir, name);
    try {
      if (!(await lstat(p)).isFile()) continue;
      await rm(p, { force: true });
      removed.push(p);
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}

async function runtimeFailed(log: string | undefined): Promise<boolean> {
  // exec: the program's own non-zero exit leaves no error in the runtime's log.
  if (!log) return false;
  const text = await readFile(log, 'utf8').catch(() => '');
  return lastLogError(text) !== undefined;
}

function lastLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

function parseJson(text: string, argv: string[], what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new NstoolError(`${argv[0]} ${what} printed something that is not JSON: ${text.slice(0, 200)}`, {
      code: 'ERR_NSTOOL_RUNTIME',
      hint: 'the runtime binary may not be an OCI runtime, or too old for this command',
      cause: err,
    });
  }
}

export function parseVersion(text: string): RuntimeVersion {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines[0] ?? '';
  const m = /^(\S+)\s+version\s+(\S+)/i.exec(first);
  const v: RuntimeVersion = { name: m?.[1] ?? 'unknown', version: m?.[2] ?? 'unknown', raw: text };
  for (const l of lines.slice(1)) {
    const kv = /^(commit|spec):\s*(.+)$/i.exec(l);
    if (kv) v[kv[1]!.toLowerCase() as 'commit' | 'spec'] = kv[2]!;
  }
  return v;
}

async function readSpec(bundle: string): Promise<Record<string, unknown> | undefined> {
  // An unreadable config.json is the runtime's to report, in its own words.
  try {
    return JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
