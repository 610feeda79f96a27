// Which instance made a resource. An instance is a state dir; the pins,
// runtime container, bundle and CNI container id of its sandbox S are all
// named nstool-sb-<tag>-S, where the tag is a hash of the state dir's path.
// The path (not an id stored inside the dir) is used so that gc still knows
// its own CNI cache entries after a reboot has emptied /run.
import { createHash } from 'node:crypto';
import { validateContainerId } from '../cni/names.js';
import { invalidArg } from '../errors.js';

export const SANDBOX_PREFIX = 'nstool-sb-';
/** Room left in NAME_MAX for the tmp and lock names made next to a sandbox's files. */
const ID_MAX_BYTES = 200;

export interface Instance {
  /** The state dir, absolute and normalised. */
  stateDir: string;
  tag: string;
  /** What every resource name of this instance starts with. */
  prefix: string;
}

export function instanceOf(stateDir: string): Instance {
  const tag = createHash('sha256').update(stateDir).digest('hex').slice(0, 8);
  return { stateDir, tag, prefix: `${SANDBOX_PREFIX}${tag}-` };
}

export function validateSandboxId(id: unknown): string {
  // The container id rule: the id is part of the pause container's and the CNI container id.
  validateContainerId(id, 'sandbox id');
  if (Buffer.byteLength(id as string) > ID_MAX_BYTES) throw invalidArg(`sandbox id must be at most ${ID_MAX_BYTES} bytes`);
  return id as string;
}

/** The name of sandbox ID's pins, container, bundle and CNI attachment. */
export function resourceName(inst: Instance, id: string): string {
  return inst.prefix + id;
}

/** The sandbox id in NAME when NAME is one of this instance's resource names, else null. */
export function idFromName(inst: Instance, name: string): string | null {
  if (!name.startsWith(inst.prefix)) return null;
  const id = name.slice(inst.prefix.length);
  try {
    return validateSandboxId(id);
  } catch {
    return null;
  }
}
