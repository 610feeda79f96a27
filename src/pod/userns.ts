// The pod's user namespace, found from its netns. A runtime joins a userns
// by path, so one that is not pinned yet gets a pin, made from the fd that
// NS_GET_USERNS returns for the netns.
import path from 'node:path';
import { NstoolError } from '../errors.js';
import { inspectNs } from '../kernel/ns.js';
import { pinOwner as pinOwnerAt, unpin } from '../kernel/pin.js';
import { DEFAULT_USERNS_PIN_DIR, ensurePinDir, inspectNetns, NetnsInfo, PinDirs, validateName } from '../netns.js';

export interface PodUserns {
  netns: NetnsInfo;
  usernsPath: string;
  /** True when this call made the pin (the caller may remove it with the pod). */
  pinned: boolean;
}

function hostOwned(info: NetnsInfo): NstoolError {
  return new NstoolError(`${info.path} is owned by the host user namespace, not by a pod user namespace`, {
    code: 'ERR_NSTOOL_NETNS_NOT_POD',
    path: info.path,
    hint: 'a container in its own userns cannot mount /sys in it; make the netns with createPodNetns (`nstool create-pod-netns`)',
  });
}

async function pinOwner(info: NetnsInfo, target: string): Promise<void> {
  await pinOwnerAt(info.path, target, { context: `pinning the userns of ${info.path}` });
  // The netns could have been replaced between inspect and pin: check.
  const pinned = await inspectNs(target, { context: `inspecting ${target}` });
  if (pinned.state !== 'ns' || pinned.inode !== info.owner!.inode) {
    await unpin(target);
    throw new NstoolError(`the pinned userns ${target} is not the owner of ${info.path}`, { code: 'ESRCH', path: target });
  }
}

/** What podUserns would do, found without side effects. */
export interface PodUsernsPlan {
  netns: NetnsInfo;
  /** The existing pin, or the path a pin will be made at. */
  usernsPath: string;
  /** True when the pin does not exist yet. */
  needsPin: boolean;
  dir: string;
}

/**
 * Inspects NETNS and names the userns path a runtime will join, so callers
 * can check everything before the pin (a side effect) is made.
 */
export async function planPodUserns(netns: string, dirs: PinDirs = {}): Promise<PodUsernsPlan> {
  const info = await inspectNetns(netns, dirs);
  if (info.type !== 'net') {
    throw new NstoolError(`${info.path} is a ${info.type} namespace, not a network namespace`, { code: 'EINVAL', path: info.path });
  }
  if (!info.owner || info.owner.host) throw hostOwned(info);
  const dir = dirs.usernsPinDir ?? DEFAULT_USERNS_PIN_DIR;
  if (info.usernsPath) return { netns: info, usernsPath: info.usernsPath, needsPin: false, dir };
  const target = path.join(dir, validateName(info.name ?? path.basename(info.path)));
  return { netns: { ...info, usernsPath: target }, usernsPath: target, needsPin: true, dir };
}

/** Makes the pin a plan calls for (nothing when it exists). */
export async function pinPodUserns(plan: PodUsernsPlan): Promise<PodUserns> {
  if (!plan.needsPin) return { netns: plan.netns, usernsPath: plan.usernsPath, pinned: false };
  ensurePinDir(plan.dir);
  await pinOwner(plan.netns, plan.usernsPath);
  return { netns: plan.netns, usernsPath: plan.usernsPath, pinned: true };
}

/**
 * The userns that owns NETNS, as a path a runtime can join: the existing
 * pin of the same name under usernsPinDir, or a new one made there.
 */
export async function podUserns(netns: string, dirs: PinDirs = {}): Promise<PodUserns> {
  return pinPodUserns(await planPodUserns(netns, dirs));
}
