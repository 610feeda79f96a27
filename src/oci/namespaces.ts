// The namespaces a container joins by path, checked before a runtime sees
// them: runc would fail later (or silently do less) in words that do not say why.
import { callSync, ErrorJSON, NstoolError } from '../errors.js';
import { native, type NativeNsInfo } from '../native.js';

const CLONE_NEWNET = 0x40000000;
const CLONE_NEWUSER = 0x10000000;

export const USERNS_MISMATCH = 'ERR_NSTOOL_USERNS_MISMATCH';
export const SETGROUPS_DENIED = 'ERR_NSTOOL_SETGROUPS_DENIED';

/** A joined netns not owned by the joined userns: the runtime could not mount /sys for it. */
export class UsernsMismatchError extends NstoolError {
  readonly netnsPath: string;
  readonly usernsPath: string;
  readonly netnsInode: number;
  /** The userns that owns the netns; null when it lies outside this process's userns. */
  readonly netnsOwnerInode: number | null;
  readonly usernsInode: number;

  constructor(f: { netnsPath: string; usernsPath: string; netnsInode: number; netnsOwnerInode: number | null; usernsInode: number }) {
    const owner = f.netnsOwnerInode === null ? 'a user namespace outside this one' : `user namespace ${f.netnsOwnerInode}`;
    super(`netns ${f.netnsPath} (${f.netnsInode}) is owned by ${owner}, not by the userns ${f.usernsPath} (${f.usernsInode})`, {
      code: USERNS_MISMATCH,
      path: f.netnsPath,
      hint:
        'join the userns that owns the netns (`nstool inspect` shows its owner; createPodNetns with pinUserns pins it), ' +
        'or make the pod netns with createPodNetns so its own userns owns it',
    });
    this.name = 'UsernsMismatchError';
    this.netnsPath = f.netnsPath;
    this.usernsPath = f.usernsPath;
    this.netnsInode = f.netnsInode;
    this.netnsOwnerInode = f.netnsOwnerInode;
    this.usernsInode = f.usernsInode;
  }

  /** In the CLI's words: each namespace as {path, inode}; the netns's owner inode beside it. */
  override toJSON(): ErrorJSON {
    return {
      ...super.toJSON(),
      netns: { path: this.netnsPath, inode: this.netnsInode, ownerInode: this.netnsOwnerInode },
      userns: { path: this.usernsPath, inode: this.usernsInode },
    };
  }
}

function inspectAs(p: string, what: string, type: number, typeName: string): NativeNsInfo {
  // Followed on purpose: /proc/PID/ns/* are links, and the path is the caller's.
  const info = callSync(() => native.inspectNsSync(p, false), `inspecting ${what} ${p}`);
  if (!info.nsfs || info.type !== type) {
    throw new NstoolError(`${what} ${p} is not a ${typeName} namespace`, {
      code: 'ERR_INVALID_ARG_VALUE',
      path: p,
      hint: info.nsfs ? `give a ${typeName} namespace file` : 'nothing is mounted there: a stale pin? `nstool list` shows the pins',
    });
  }
  return info;
}

/** USERNS_PATH must be a user namespace; it must own NETNS_PATH when one is given. */
export function checkJoinedNamespaces(usernsPath: string, netnsPath: string | undefined): void {
  const user = inspectAs(usernsPath, 'usernsPath', CLONE_NEWUSER, 'user');
  if (netnsPath === undefined) return;
  const net = inspectAs(netnsPath, 'netnsPath', CLONE_NEWNET, 'network');
  if (net.owner && net.owner.ino === user.ino && net.owner.dev === user.dev) return;
  throw new UsernsMismatchError({
    netnsPath,
    usernsPath,
    netnsInode: net.ino,
    netnsOwnerInode: net.owner?.ino ?? null,
    usernsInode: user.ino,
  });
}

/**
 * Supplementary groups cannot be set in a userns whose setgroups is "deny",
 * and runc 1.1.5 then drops them without a word: refuse instead. Only asked
 * when there are groups beyond the primary one (the read forks a helper).
 */
export function checkSupplementaryGroups(usernsPath: string, gid: number, additionalGids: readonly number[] | undefined, setgroups?: string): void {
  const extra = (additionalGids ?? []).filter((g) => g !== gid);
  if (extra.length === 0) return;
  const mode = setgroups ?? callSync(() => native.readIdMapsSync(usernsPath, false), `reading setgroups of ${usernsPath}`).setgroups;
  if (mode.trim() !== 'deny') return;
  throw new NstoolError(`the user has supplementary groups ${extra.join(',')}, but the userns ${usernsPath} denies setgroups`, {
    code: SETGROUPS_DENIED,
    path: usernsPath,
    hint: 'the runtime would drop the groups silently; make the pod userns with setgroups "allow" (the default), or run as a user without supplementary groups',
  });
}
