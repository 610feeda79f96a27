// Advisory locks: flock(LOCK_EX) held by an fd the caller closes.
import { callAsync, callSync } from '../errors.js';
import { core, type Why } from './core.js';

/** Locks PATH (created if missing); returns the fd holding the lock. Without WAIT, EAGAIN when it is held. */
export function lockFileSync(path: string, wait: boolean, why: Why = {}): number {
  return callSync(() => core().lockFileSync(path, wait), why.context, why.hints);
}

export async function lockFile(path: string, wait: boolean, why: Why = {}): Promise<number> {
  return callAsync(() => core().lockFile(path, wait), why.context, why.hints);
}

/** Closes an fd the core handed out (a lock's), releasing what it held. */
export function closeFdSync(fd: number, why: Why = {}): void {
  callSync(() => core().closeFdSync(fd), why.context, why.hints);
}
