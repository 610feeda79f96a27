// Pure argv builders for an OCI runtime (runc, crun): one per command, no
// side effects, so unit tests can pin down exactly what the runtime receives.
import os from 'node:os';
import { invalidArg, requireAbsolute } from '../errors.js';
import { showValue, validateContainerId } from '../names.js';

// The container id rule runc and the CNI plugins share lives in ../names.ts.
export { validateContainerId } from '../names.js';

export interface GlobalOptions {
  root?: string;
  log?: string;
  logFormat?: 'json' | 'text';
  systemdCgroup?: boolean;
  /** runc's --rootless true: no cgroup limits, devices bound, for a caller without root. */
  rootless?: boolean;
}

/** Flags that go before the command. */
export function globalArgs(o: GlobalOptions): string[] {
  const a: string[] = [];
  if (o.root !== undefined) a.push('--root', requireAbsolute(o.root, 'root'));
  if (o.log !== undefined) a.push('--log', requireAbsolute(o.log, 'log'), '--log-format', o.logFormat ?? 'json');
  if (o.systemdCgroup) a.push('--systemd-cgroup');
  if (o.rootless) a.push('--rootless', 'true');
  return a;
}

export interface CreateOptions {
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
}

export function createArgs(id: string, bundle: string, o: CreateOptions = {}): string[] {
  const a = ['create', '--bundle', requireAbsolute(bundle, 'bundle')];
  if (o.pidFile !== undefined) a.push('--pid-file', requireAbsolute(o.pidFile, 'pidFile'));
  if (o.consoleSocket !== undefined) a.push('--console-socket', requireAbsolute(o.consoleSocket, 'consoleSocket'));
  if (o.noPivot) a.push('--no-pivot');
  if (o.noNewKeyring) a.push('--no-new-keyring');
  a.push(validateContainerId(id));
  return a;
}

export function startArgs(id: string): string[] {
  return ['start', validateContainerId(id)];
}

export function stateArgs(id: string): string[] {
  return ['state', validateContainerId(id)];
}

/** A signal as a name runc parses: "KILL", "SIGTERM", 9 all become SIGKILL-style names. */
export function signalName(sig: string | number): string {
  const signals = os.constants.signals as Record<string, number>;
  if (typeof sig === 'number') {
    const name = Object.keys(signals).find((k) => signals[k] === sig);
    if (!name) throw invalidArg(`unknown signal number ${showValue(sig)}`);
    return name;
  }
  const up = typeof sig === 'string' ? sig.toUpperCase() : '';
  const name = up.startsWith('SIG') ? up : `SIG${up}`;
  if (!(name in signals)) throw invalidArg(`unknown signal ${showValue(sig)}`);
  return name;
}

export function killArgs(id: string, signal: string | number = 'SIGTERM', o: { all?: boolean } = {}): string[] {
  const a = ['kill'];
  if (o.all) a.push('--all');
  a.push(validateContainerId(id), signalName(signal));
  return a;
}

export function deleteArgs(id: string, o: { force?: boolean } = {}): string[] {
  const a = ['delete'];
  if (o.force) a.push('--force');
  a.push(validateContainerId(id));
  return a;
}

export interface ExecArgsOptions {
  /** A process.json file (OCI process object); argv and the flags below are then ignored by runc. */
  processFile?: string;
  argv?: readonly string[];
  env?: Record<string, string>;
  cwd?: string;
  /** "uid" or "uid:gid" inside the container. */
  user?: string;
  tty?: boolean;
  detach?: boolean;
  pidFile?: string;
}

export function execArgs(id: string, o: ExecArgsOptions): string[] {
  const a = ['exec'];
  if (o.processFile !== undefined) {
    a.push('--process', requireAbsolute(o.processFile, 'processFile'));
  } else {
    if (o.cwd !== undefined) a.push('--cwd', requireAbsolute(o.cwd, 'cwd'));
    for (const [k, v] of Object.entries(o.env ?? {})) {
      if (!k || k.includes('=') || k.includes('\0') || v.includes('\0')) throw invalidArg(`bad environment variable ${showValue(k)}`);
      a.push('--env', `${k}=${v}`);
    }
    if (o.user !== undefined) {
      if (!/^\d+(:\d+)?$/.test(o.user)) throw invalidArg(`user must be "uid" or "uid:gid", got ${showValue(o.user)}`);
      a.push('--user', o.user);
    }
  }
  if (o.tty) a.push('--tty');
  if (o.detach) a.push('--detach');
  if (o.pidFile !== undefined) a.push('--pid-file', requireAbsolute(o.pidFile, 'pidFile'));
  a.push(validateContainerId(id));
  if (o.processFile === undefined) {
    const argv = o.argv ?? [];
    if (argv.length === 0 || argv.some((s) => typeof s !== 'string' || s.includes('\0'))) {
      throw invalidArg('exec needs a non-empty argv of strings without NUL');
    }
    // runc stops reading its own flags at the id, so the program's flags are safe.
    a.push(...argv);
  }
  return a;
}

export function listArgs(): string[] {
  return ['list', '--format', 'json'];
}

export function featuresArgs(): string[] {
  return ['features'];
}

export function versionArgs(): string[] {
  return ['--version'];
}
