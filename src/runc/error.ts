// A failed runtime command: runc's own message (the last level=error line of
// its JSON log), its exit code and the argv, plus a hint for the failures
// users of pods with user namespaces meet most.
import { NstoolError } from '../errors.js';

export const RUNTIME_ERROR = 'ERR_NSTOOL_RUNTIME';

const KNOWN: Array<[RegExp, string]> = [
  [
    /sysfs.*operation not permitted|operation not permitted.*sysfs/is,
    'the netns is not owned by the user namespace the container runs in; make the pod netns with createPodNetns ' +
      '(`nstool create-pod-netns`) and let the container join its owning userns by path',
  ],
  [/container .* does not exist|container does not exist/i, '`runc list` (with the same --root) shows the containers that exist'],
  [/already exists/i, 'choose another container id or delete the old container first'],
  [/config\.json/i, 'the bundle directory must hold a config.json'],
  [/no uid mappings found|uid mappings/i, 'joining a user namespace by path still needs linux.uidMappings/gidMappings read from it'],
];

export function runtimeHint(message: string): string | undefined {
  for (const [re, hint] of KNOWN) if (re.test(message)) return hint;
  return undefined;
}

export class RuntimeError extends NstoolError {
  /** The runtime's own words. */
  readonly runtimeMessage: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly argv: string[];
  readonly stderr: string;

  constructor(f: { command: string; runtimeMessage: string; exitCode: number | null; signal: NodeJS.Signals | null; argv: string[]; stderr: string; hint?: string }) {
    const cmd = f.command;
    const how = f.exitCode !== null ? `exit code ${f.exitCode}` : `signal ${f.signal ?? '?'}`;
    const hint = f.hint ?? runtimeHint(f.runtimeMessage);
    super(`${f.argv[0] ?? 'runtime'} ${cmd} failed (${how}): ${f.runtimeMessage || '(no message)'}`, {
      code: RUNTIME_ERROR,
      ...(hint ? { hint } : {}),
    });
    this.name = 'RuntimeError';
    this.runtimeMessage = f.runtimeMessage;
    this.exitCode = f.exitCode;
    this.signal = f.signal;
    this.argv = f.argv;
    this.stderr = f.stderr;
  }
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
