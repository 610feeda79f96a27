// inotify for the id allocator: one IN_NONBLOCK|IN_CLOEXEC fd kept per
// process (closing one waits for an RCU grace period), dirs watched by path,
// events read as raw struct inotify_event records.
import { callSync } from '../errors.js';
import { core, type Why } from './core.js';

export function inotifyInitSync(why: Why = {}): number {
  return callSync(() => core().inotifyInitSync(), why.context, why.hints);
}

/** A watch descriptor for DIR on FD (changes to its entries). */
export function inotifyWatchDirSync(fd: number, dir: string, why: Why = {}): number {
  return callSync(() => core().inotifyWatchDirSync(fd, dir), why.context, why.hints);
}

/** Every queued event; an empty buffer when none. */
export function inotifyReadSync(fd: number, why: Why = {}): Buffer {
  return callSync(() => core().inotifyReadSync(fd), why.context, why.hints);
}
