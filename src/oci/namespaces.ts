// The namespaces a container joins by path, checked before a runtime sees
// them: runc would fail later (or silently do less) in words that do not say why.
import { ErrorJSON, NstoolError } from '../errors.js';
import { inspectNsSync, readIdMapsSync, type NsInfo } from '../kernel/ns.js';

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

function inspectAs(p: string, what: string, type: string, typeName: string): NsInfo {
  // Followed on purpose: /proc/PID/ns/* are links, and the path is the caller's.
  const info = inspectNsSync(p, { follow: true, context: `inspecting ${what} ${p}` });
  if (info.state !== 'ns' || info.type !== type) {
    throw new NstoolError(`${what} ${p} is not a ${typeName} namespace`, {
      code: 'ERR_INVALID_ARG_VALUE',
      path: p,
      hint: info.state === 'ns' ? `give a ${typeName} namespace file` : 'nothing is mounted there: a stale pin? `nstool list` shows the pins',
    });
  }
  return info;
}

/** USERNS_PATH must be a user namespace; it must own NETNS_PATH when one is given. */
export function checkJoinedNamespaces(usernsPath: string, netnsPath: string | undefined): void {
  const user = inspectAs(usernsPath, 'usernsPath', 'user', 'user');
  if (netnsPath === undefined) return;
  const net = inspectAs(netnsPath, 'netnsPath', 'net', 'network');
  if (net.owner && net.owner.inode === user.inode && net.owner.dev === user.dev) return;
  throw new UsernsMismatchError({
    netnsPath,
    usernsPath,
    netnsInode: net.inode,
    netnsOwnerInode: net.owner?.inode ?? null,
    usernsInode: user.inode,
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
  const mode = setgroups ?? readIdMapsSync(usernsPath, false, { context: `reading setgroups of ${usernsPath}` }).setgroups;
  if (mode.trim() !== 'deny') return;
  throw new NstoolError(`the user has supplementary groups ${extra.join(',')}, but the userns ${usernsPath} denies setgroups`, {
    code: SETGROUPS_DENIED,
    path: usernsPath,
    hint: 'the runtime would drop the groups silently; make the pod userns with setgroups "allow" (the default), or run as a user without supplementary groups',
  });
}

/**
 * Joined ipc and uts namespaces must be the pod's: owned by the userns that
 * owns NETNS_PATH (or by USERNS_PATH when there is no netns). A runtime in
 * the pod's userns could not join one the host owns, and would say so in
 * words that do not say why.
 */
export function checkJoinedPodNamespaces(joined: { ipc?: string; uts?: string }, owner: { netnsPath?: string; usernsPath?: string }): void {
  let want: { inode: number; dev: number } | null | undefined;
  if (owner.netnsPath !== undefined) want = inspectAs(owner.netnsPath, 'netnsPath', 'net', 'network').owner;
  else if (owner.usernsPath !== undefined) want = inspectAs(owner.usernsPath, 'usernsPath', 'user', 'user');
  for (const kind of ['ipc', 'uts'] as const) {
    const p = joined[kind];
    if (p === undefined) continue;
    const info = inspectAs(p, `${kind}Path`, kind, kind);
    if (want === undefined || (info.owner && want && info.owner.inode === want.inode && info.owner.dev === want.dev)) continue;
    throw new NstoolError(`${kind}Path ${p} is not owned by the pod's user namespace${want ? ` (${want.inode})` : ''}`, {
      code: USERNS_MISMATCH,
      path: p,
      hint: 'join the ipc and uts namespaces of the sandbox the netns belongs to (sandboxNamespaces gives them)',
    });
  }
}
