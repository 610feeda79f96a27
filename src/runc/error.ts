// A failed runtime command: the runtime's own message (the last level=error
// line of its JSON log), its exit code and the argv, what it means (reason,
// the same for runc and crun) and a hint for the failures users of pods with
// user namespaces meet most.
import { ErrorJSON, NstoolError } from '../errors.js';

export const RUNTIME_ERROR = 'ERR_NSTOOL_RUNTIME';

/**
 * What a failure means, read once from the runtime's words so callers never
 * match message text. "other" is everything not recognised: callers must not
 * take it for "not-found" (see probeContainer for an answer that does not
 * depend on wording).
 */
export type RuntimeErrorReason = 'not-found' | 'exists' | 'netns-not-owned' | 'other';

// Each pattern names the runtime and version whose wording it is.
const REASONS: Array<[RegExp, RuntimeErrorReason]> = [
  // runc 1.1.5 (libcontainer's ErrNotExist), for state, kill, start, exec, delete.
  [/\bcontainer does not exist\b/i, 'not-found'],
  // crun 1.9+: "container `ID` does not exist" (it wraps the error below).
  [/\bcontainer `[^`]*` does not exist\b/i, 'not-found'],
  // crun 1.8 (Debian 12): the id's status file is missing.
  [/error opening file `[^`]*\/status`: No such file or directory/, 'not-found'],
  // runc 1.1.5: "container with given ID already exists"; runc 1.2+: "container with id exists: ID".
  [/\bcontainer with given ID already exists\b|\bcontainer with id exists\b/i, 'exists'],
  // crun: "container `ID` already exists".
  [/\bcontainer `[^`]*` already exists\b/i, 'exists'],
  // runc and crun alike when the netns is not owned by the userns the container runs in.
  [/sysfs.*operation not permitted|operation not permitted.*sysfs/is, 'netns-not-owned'],
];

export function classifyRuntimeMessage(message: string): RuntimeErrorReason {
  for (const [re, reason] of REASONS) if (re.test(message)) return reason;
  return 'other';
}

const REASON_HINTS: Record<RuntimeErrorReason, string | undefined> = {
  'not-found': '`runc list` (with the same --root) shows the containers that exist',
  exists: 'choose another container id or delete the old container first',
  'netns-not-owned':
    'the netns is not owned by the user namespace the container runs in; make the pod netns with createPodNetns ' +
    '(`nstool create-pod-netns`) and let the container join its owning userns by path',
  other: undefined,
};

const OTHER_HINTS: Array<[RegExp, string]> = [
  [/config\.json/i, 'the bundle directory must hold a config.json'],
  [/no uid mappings found|uid mappings/i, 'joining a user namespace by path still needs linux.uidMappings/gidMappings read from it'],
];

export function runtimeHint(message: string): string | undefined {
  const byReason = REASON_HINTS[classifyRuntimeMessage(message)];
  if (byReason) return byReason;
  for (const [re, hint] of OTHER_HINTS) if (re.test(message)) return hint;
  return undefined;
}

export class RuntimeError extends NstoolError {
  /** The runtime's own words. */
  readonly runtimeMessage: string;
  /** What the failure means, whichever runtime said it. */
  readonly reason: RuntimeErrorReason;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly argv: string[];
  readonly stderr: string;

  constructor(f: {
    command: string;
    runtimeMessage: string;
    exitCode: number | null;
    signal: NodeJS.Signals | null;
    argv: string[];
    stderr: string;
    hint?: string;
    reason?: RuntimeErrorReason;
  }) {
    const cmd = f.command;
    const how = f.exitCode !== null ? `exit code ${f.exitCode}` : `signal ${f.signal ?? '?'}`;
    const hint = f.hint ?? runtimeHint(f.runtimeMessage);
    super(`${f.argv[0] ?? 'runtime'} ${cmd} failed (${how}): ${f.runtimeMessage || '(no message)'}`, {
      code: RUNTIME_ERROR,
      ...(hint ? { hint } : {}),
    });
    this.name = 'RuntimeError';
    this.runtimeMessage = f.runtimeMessage;
    this.reason = f.reason ?? classifyRuntimeMessage(f.runtimeMessage);
    this.exitCode = f.exitCode;
    this.signal = f.signal;
    this.argv = f.argv;
    this.stderr = f.stderr;
  }

  /** The runtime's stderr stays out: its log line (runtimeMessage) is what it said. */
  override toJSON(): ErrorJSON {
    return { ...super.toJSON(), reason: this.reason, runtimeMessage: this.runtimeMessage, exitCode: this.exitCode, signal: this.signal, argv: this.argv };
  }
}

function reasonOf(err: unknown): RuntimeErrorReason | undefined {
  // By code and field rather than instanceof: two copies of this module (src
  // and dist, or two installs) make errors the other does not recognise.
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; reason?: unknown };
  return e.code === RUNTIME_ERROR && typeof e.reason === 'string' ? (e.reason as RuntimeErrorReason) : undefined;
}

/** The runtime said the container does not exist. */
export function isNotFound(err: unknown): boolean {
  return reasonOf(err) === 'not-found';
}

/** The runtime refused to create a container because the id is taken. */
export function isExists(err: unknown): boolean {
  return reasonOf(err) === 'exists';
}

/** The last level=error message of a JSON log (runc/crun --log-format json). */
export function lastLogError(log: string): string | undefined {
  let last: string | undefined;
  for (const line of log.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if ((e.level === 'error' || e.level === 'fatal') && typeof e.msg === 'string') last = e.msg;
    } catch {
      // a torn or non-JSON line: skip it
    }
  }
  return last;
}
