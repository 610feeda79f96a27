// Pins: a namespace kept alive by a bind mount on an empty file, in a pin
// dir that is a shared mount point of its own (as `ip netns` keeps /run/netns).
import { callAsync, callSync } from '../errors.js';
import { core, type UnpinResult, type Why } from './core.js';

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
