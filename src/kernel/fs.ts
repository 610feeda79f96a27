// File operations Node's fs lacks: a read scoped to a root (the tenant's
// rootfs) and a rename that never replaces.
import { callAsync, callSync } from '../errors.js';
import { core, type ResolveHow, type RootFile, type Why } from './core.js';

export type { ResolveHow, RootFile } from './core.js';

/**
 * Reads P resolved as if ROOT were "/" (openat2 RESOLVE_IN_ROOT, or an
 * O_PATH walk): data only for a regular file of at most MAX_BYTES; null when
 * a component is missing or not a directory.
 */
export function readInRootSync(root: string, p: string, maxBytes: number, how: ResolveHow = 'auto', why: Why = {}): RootFile | null {
  return callSync(() => core().readInRootSync(root, p, maxBytes, how), why.context, why.hints);
}

export async function readInRoot(root: string, p: string, maxBytes: number, how: ResolveHow = 'auto', why: Why = {}): Promise<RootFile | null> {
  return callAsync(() => core().readInRoot(root, p, maxBytes, how), why.context, why.hints);
}

/** renameat2(RENAME_NOREPLACE): EEXIST (or ENOTEMPTY) instead of replacing TO. */
export async function renameNoReplace(from: string, to: string, why: Why = {}): Promise<void> {
  await callAsync(() => core().renameNoReplace(from, to), why.context, why.hints);
}
