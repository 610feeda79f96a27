// Pins: a namespace kept alive by a bind mount on an empty file, in a pin
// dir that is a shared mount point of its own (as `ip netns` keeps /run/netns).
import { callAsync, callSync, fromNative } from '../errors.js';
import { core, poolCall, type UnpinResult, type Why } from './core.js';

/** Makes DIR (created if missing) a shared mount point bound onto itself. */
export function ensurePinDirSync(dir: string, why: Why = {}): void {
  callSync(() => core().ensurePinDirSync(dir), why.context, why.hints);
}

/** Pins the user namespace that owns the namespace at NS_PATH (NS_GET_USERNS) at TARGET. */
export async function pinOwner(nsPath: string, target: string, why: Why = {}): Promise<void> {
  await callAsync(() => core().pinOwner(nsPath, target), why.context, why.hints);
}

/** Unmounts and removes a pin; a missing one is "already gone" (nothing unmounted or removed). */
export async function unpin(target: string, why: Why = {}): Promise<UnpinResult> {
  return callAsync(() => core().unpin(target), why.context, why.hints);
}

export function unpinSync(target: string, why: Why = {}): UnpinResult {
  return callSync(() => core().unpinSync(target), why.context, why.hints);
}

/** The pin an error from unpinAll is about (the core names it as the error's path). */
function failedPin(err: unknown, targets: readonly string[]): string {
  const p = (err as { path?: unknown } | null)?.path;
  return typeof p === 'string' ? p : targets[0]!;
}

/**
 * unpinSync of each of TARGETS, in order, in one call into the core; null,
 * with nothing done, when GUARD exists. The first error stops the rest; its
 * message starts with CONTEXT(the pin that failed).
 */
export function unpinAllSync(targets: string[], guard: string | undefined, context: (pin: string) => string): UnpinResult[] | null {
  try {
    return core().unpinAllSync(targets, guard, false);
  } catch (err) {
    throw fromNative(err, context(failedPin(err, targets)));
  }
}

/**
 * unpinAllSync as one trip to the pool, except that every target is tried
 * and the first error is thrown after (as parallel unpins would).
 */
export function unpinAll(targets: string[], guard: string | undefined, context: (pin: string) => string): Promise<UnpinResult[] | null> {
  // Not async itself, as createUsernsNetns: poolCall's promise as it is.
  return poolCall(() => core().unpinAll(targets, guard, true), (err) => context(failedPin(err, targets)));
}
