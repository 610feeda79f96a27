// One error class for everything nstool reports. Failed syscalls keep the
// native fields (code, errno, syscall, path) and gain a hint a person can
// act on; bad input gets a code of Node's ERR_* family before any side effect.

export interface ErrorFields {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;
  dest?: string;
  hint?: string;
  cause?: unknown;
}

/**
 * An error as `JSON.stringify` and `nstool --json` show it: `code` and
 * `message` always, then the fields that are set, then every secondary
 * failure in `suppressed`.
 */
export type ErrorJSON = { code: string; message: string } & Record<string, unknown>;

export class NstoolError extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;
  readonly dest?: string;
  readonly hint?: string;

  constructor(message: string, f: ErrorFields) {
    super(f.hint ? `${message} (${f.hint})` : message, f.cause === undefined ? undefined : { cause: f.cause });
    this.name = 'NstoolError';
    this.code = f.code;
    if (f.errno !== undefined) this.errno = f.errno;
    if (f.syscall !== undefined) this.syscall = f.syscall;
    if (f.path !== undefined) this.path = f.path;
    if (f.dest !== undefined) this.dest = f.dest;
    if (f.hint !== undefined) this.hint = f.hint;
  }

  /**
   * The one serialisation of an error (the CLI's --json prints it).
   * Subclasses add their own fields to what this returns.
   */
  toJSON(): ErrorJSON {
    const out: ErrorJSON = { code: this.code, message: this.message };
    for (const k of ['errno', 'syscall', 'path', 'dest', 'hint'] as const) if (this[k] !== undefined) out[k] = this[k];
    addSuppressed(out, this);
    return out;
  }
}

/**
 * Secondary failures riding on ERR (an undo that failed after it, a CNI
 * DEL's other plugins), as one list: `suppressed`, or the `otherErrors` a
 * failed DEL carries.
 */
export function suppressedOf(err: unknown): unknown[] {
  if (err === null || typeof err !== 'object') return [];
  const e = err as { suppressed?: unknown; otherErrors?: unknown };
  return [...(Array.isArray(e.suppressed) ? e.suppressed : []), ...(Array.isArray(e.otherErrors) ? e.otherErrors : [])];
}

function addSuppressed(out: ErrorJSON, err: unknown): void {
  const s = suppressedOf(err);
  if (s.length > 0) out['suppressed'] = s.map((e) => errorToJSON(e));
}

/** How deep suppressed lists are followed: an error that lists itself must not recurse for ever. */
const MAX_DEPTH = 8;
let depth = 0;

/**
 * Any thrown value as JSON: an error's own toJSON() when it has one (every
 * NstoolError), else the fields Node's system errors carry.
 */
export function errorToJSON(err: unknown): ErrorJSON {
  const e = err as { toJSON?: unknown; code?: unknown; message?: unknown } | null;
  const plain = (): ErrorJSON => ({
    code: typeof e?.code === 'string' ? e.code : 'ERR_NSTOOL',
    message: typeof e?.message === 'string' ? e.message : safeString(err),
  });
  if (depth >= MAX_DEPTH) return plain();
  depth++;
  try {
    if (err instanceof Error && typeof e?.toJSON === 'function') {
      const j = (e.toJSON as () => unknown).call(err) as Partial<ErrorJSON> | null;
      if (j && typeof j === 'object' && typeof j.code === 'string' && typeof j.message === 'string') return j as ErrorJSON;
    }
    const out = plain();
    if (err instanceof Error) {
      const n = err as NativeErrorLike;
      if (typeof n.errno === 'number') out['errno'] = n.errno;
      for (const k of ['syscall', 'path', 'dest'] as const) if (typeof n[k] === 'string') out[k] = n[k];
      addSuppressed(out, err);
    }
    return out;
  } finally {
    depth--;
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return 'an error that cannot be shown';
  }
}

const HINTS: Record<string, string> = {
  EPERM: 'run as root or with CAP_SYS_ADMIN',
  EACCES: 'run as root or with CAP_SYS_ADMIN',
  EEXIST: 'a pin with this name already exists and was left untouched; choose another name or delete it first',
  ENOSPC: 'the namespace limit is reached; see /proc/sys/user/max_user_namespaces and max_net_namespaces',
  ENOENT: 'no such file; `nstool list` shows the pinned namespaces',
  ELOOP: 'a symbolic link stands where a pin is expected; nstool never follows it and left it alone',
  ENOTDIR: 'the pin directory is not a directory',
  ENOSYS: 'the kernel lacks this system call; a newer kernel is needed',
  EBUSY: 'the mount is in use',
  ENOTEMPTY: 'this file has content, so it is not a pin; nstool left it alone',
  EUSERS: 'too many nested user namespaces',
};

export function invalidArg(message: string, code = 'ERR_INVALID_ARG_VALUE'): NstoolError {
  return new NstoolError(message, { code });
}

/** P as a path string that is absolute and NUL-free, else ERR_INVALID_ARG_VALUE naming WHAT. */
export function requireAbsolute(p: unknown, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0')) throw invalidArg(`${what} must be an absolute path`);
  return p;
}

interface NativeErrorLike {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  path?: unknown;
  dest?: unknown;
  message?: unknown;
}

/** Turns an error from the native core into an NstoolError with a hint. */
export function fromNative(err: unknown, context?: string, hints: Record<string, string> = {}): Error {
  if (err instanceof NstoolError || !(err instanceof Error)) return err as Error;
  const n = err as NativeErrorLike;
  if (typeof n.code !== 'string' || typeof n.syscall !== 'string') return err;
  const hint = hints[n.code] ?? HINTS[n.code];
  const msg = context ? `${context}: ${String(n.message)}` : String(n.message);
  return new NstoolError(msg, {
    code: n.code,
    errno: typeof n.errno === 'number' ? n.errno : undefined,
    syscall: n.syscall,
    path: typeof n.path === 'string' ? n.path : undefined,
    dest: typeof n.dest === 'string' ? n.dest : undefined,
    hint,
    cause: err,
  });
}

/**
 * Calls into the native core, keeping the caller's JS stack (an async
 * rejection from the libuv pool has none worth reading).
 */
export async function callAsync<T>(fn: () => Promise<T>, context?: string, hints?: Record<string, string>): Promise<T> {
  const site = new Error();
  try {
    return await fn();
  } catch (err) {
    const e = fromNative(err, context, hints);
    if (e !== err && site.stack) e.stack = `${e.name}: ${e.message}\n${site.stack.split('\n').slice(1).join('\n')}`;
    throw e;
  }
}

export function callSync<T>(fn: () => T, context?: string, hints?: Record<string, string>): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err, context, hints);
  }
}
