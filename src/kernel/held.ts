// Rootless: a helper child in a new userns + netns held open with no map
// written (newuidmap/newgidmap write them on its pid), and the per-user
// keeper's socket, which pins what it is handed.
import { callAsync, callSync } from '../errors.js';
import { core, type HeldHandle, type HeldHelper, type NativeIdMaps, type Why } from './core.js';

export type { HeldHandle, HeldHelper } from './core.js';

export async function heldUsernsNetns(why: Why = {}): Promise<HeldHelper> {
  return callAsync(() => core().heldUsernsNetns(), why.context, why.hints);
}

/** One write() to /proc/<helper>/FILE. */
export function heldWriteSync(h: HeldHandle, file: 'uid_map' | 'gid_map' | 'setgroups', text: string, why: Why = {}): void {
  callSync(() => core().heldWriteSync(h, file, text), why.context, why.hints);
}

export function heldReadMapsSync(h: HeldHandle, why: Why = {}): NativeIdMaps {
  return callSync(() => core().heldReadMapsSync(h), why.context, why.hints);
}

/** REQUEST to the keeper's socket with the helper's netns and userns fds; the reply. */
export async function heldSend(h: HeldHandle, socketPath: string, request: string, timeoutMs: number, why: Why = {}): Promise<string> {
  return callAsync(() => core().heldSend(h, socketPath, request, timeoutMs), why.context, why.hints);
}

/** Kills and reaps the helper and closes its fds; idempotent. */
export function heldCloseSync(h: HeldHandle): void {
  core().heldCloseSync(h);
}

/** REQUEST to the keeper's socket, no fds; the reply. */
export async function keeperCall(socketPath: string, request: string, timeoutMs: number, why: Why = {}): Promise<string> {
  return callAsync(() => core().keeperCall(socketPath, request, timeoutMs), why.context, why.hints);
}
