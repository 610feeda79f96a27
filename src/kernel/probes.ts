// What the features report asks the kernel, each probe harmless: syscalls
// called with arguments they must reject, a child that tries an unprivileged
// userns, a detached mount tree made read-only, a small private tmpfs.
import { callSync } from '../errors.js';
import { core, type Why } from './core.js';

/** 0 or the errno each kernel interface gave (ENOSYS: absent). */
export function probeSyscallsSync(why: Why = {}): Record<string, number> {
  return callSync(() => core().probeSyscallsSync(), why.context, why.hints);
}

/** A child drops to uid/gid (when DROP) and unshares a userns; step is "" when it worked. */
export function probeUnprivilegedUsernsSync(uid: number, gid: number, drop: boolean): { step: string; errno: number } {
  return core().probeUnprivilegedUsernsSync(uid, gid, drop);
}

/** Makes a detached recursive clone of PATH's mounts read-only recursively; throws on failure. */
export function probeRecursiveReadonlySync(path: string, why: Why = {}): void {
  callSync(() => core().probeRecursiveReadonlySync(path), why.context, why.hints);
}

/** A small tmpfs (0700, nosuid, nodev, noexec) at TARGET. */
export function mountTmpfsSync(target: string, why: Why = {}): void {
  callSync(() => core().mountTmpfsSync(target), why.context, why.hints);
}
