// Does a container exist? Asked without trusting the runtime's wording alone:
// `state` answers, its failure is classified, and a failure nobody recognises
// is settled by the runtime's state directory (ROOT/ID) where it can be.
import { readFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { validateContainerId } from './args.js';
import type { CallOptions, RuncClient } from './client.js';
import { isNotFound, RUNTIME_ERROR } from './error.js';

/** "unknown" must never be taken for "absent": nothing may be removed on it. */
export type Presence = 'present' | 'absent' | 'unknown';

function inUserns(): boolean {
  try {
    return readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') !== '0 0 4294967295';
  } catch {
    return true; // cannot tell: the callers then give no answer
  }
}

/**
 * The state root a runtime uses when no --root is given, by the name its
 * `--version` prints (the runtime gets our environment); undefined where
 * it cannot be told for sure.
 */
export function defaultRuntimeRoot(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const xdg = env['XDG_RUNTIME_DIR'];
  switch (name) {
    case 'runc':
      // runc 1.1: XDG_RUNTIME_DIR/runc when rootless; as root only inside a
      // user namespace, and then depending on $USER.
      if (!xdg) return '/run/runc';
      if (process.geteuid?.() !== 0) return path.join(xdg, 'runc');
      return inUserns() ? undefined : '/run/runc';
    case 'crun':
      // Some crun versions take XDG_RUNTIME_DIR/crun even as root, some not.
      return xdg === undefined ? '/run/crun' : undefined;
    default:
      return undefined;
  }
}

async function kindOf(p: string): Promise<'dir' | 'missing' | 'other'> {
  try {
    return (await lstat(p)).isDirectory() ? 'dir' : 'other';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'other';
  }
}

/** Whether container ID exists in CLIENT's runtime (and --root). */
export async function probeContainer(client: RuncClient, id: string, o: CallOptions = {}): Promise<Presence> {
  validateContainerId(id); // it forms a path below
  let failure: unknown;
  try {
    await client.state(id, o);
    return 'present';
  } catch (err) {
    if (isNotFound(err)) return 'absent';
    failure = err;
  }
  // The runtime could not be run or did not finish: nothing is known.
  if ((failure as { code?: unknown } | null)?.code !== RUNTIME_ERROR) return 'unknown';

  let root = client.root;
  const explicit = root !== undefined;
  if (!explicit) {
    const v = await client.version(o).catch(() => undefined);
    root = v ? defaultRuntimeRoot(v.name) : undefined;
    if (root === undefined) return 'unknown';
  }
  const rootKind = await kindOf(root!);
  // A missing root given by --root holds no containers; a missing default may be a wrong guess.
  if (rootKind === 'missing') return explicit ? 'absent' : 'unknown';
  if (rootKind !== 'dir') return 'unknown';
  const entry = await kindOf(path.join(root!, id));
  if (entry === 'dir') return 'present';
  if (entry === 'missing') return 'absent';
  return 'unknown';
}
