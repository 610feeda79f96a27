// What the commands print with --json: the library's results in one
// vocabulary. A pin is `name` and `path`; a namespace is an object under its
// kind, `netns: {path, inode}` and `userns: {path, inode}` (the netns's
// owner); a sandbox or container is `id`; deletes say `existed`. The
// library's own names for the same facts (netnsInode, usernsInode,
// usernsPath, netnsPath, inode, owner, containerId, pid, status,
// netnsPresent, usernsPinned) follow as deprecated aliases for one release.
// Fields a view does not know are passed through.
import type { DeleteResult, ListEntry, NetnsInfo, NsOwner, PodNetns } from '../netns.js';
import type { PodContainerRecord } from '../pod/container.js';
import type { SandboxDetails, SandboxInfo } from '../sandbox/types.js';

const some = <T>(k: string, v: T | undefined | null): Record<string, T> => (v === undefined || v === null ? {} : { [k]: v });

export function podNetnsView(r: PodNetns): Record<string, unknown> {
  const { name, path, netnsInode, usernsInode, usernsPath, ...rest } = r;
  return {
    name,
    path,
    netns: { path, inode: netnsInode },
    userns: { ...some('path', usernsPath), inode: usernsInode },
    ...rest,
    netnsInode,
    usernsInode,
    ...some('usernsPath', usernsPath),
  };
}

export function deleteView(r: DeleteResult): Record<string, unknown> {
  const { name, path, existed, stale, usernsPath, ...rest } = r;
  return { ...some('name', name), path, existed, stale, ...(usernsPath ? { userns: { path: usernsPath } } : {}), ...rest, ...some('usernsPath', usernsPath) };
}

function ownerView(o: NsOwner, path?: string): Record<string, unknown> {
  return { ...some('path', path), inode: o.inode, uid: o.uid, host: o.host };
}

export function listEntryView(e: ListEntry): Record<string, unknown> {
  const { name, path, kind, inode, owner, ...rest } = e;
  if (kind !== 'netns') return { name, path, kind, ...rest };
  return { name, path, kind, netns: { path, inode }, userns: owner ? ownerView(owner) : null, ...rest, inode, owner };
}

/**
 * A namespace file: under `netns` or `userns` by its type (`ns` for the
 * others); its owning userns as `userns` (a userns's own owner: `parent`).
 */
export function inspectView(i: NetnsInfo): Record<string, unknown> {
  const { name, path, type, inode, dev, owner, usernsPath, ...rest } = i;
  const key = type === 'net' ? 'netns' : type === 'user' ? 'userns' : 'ns';
  const ownerKey = type === 'user' ? 'parent' : 'userns';
  return {
    ...some('name', name),
    path,
    type,
    [key]: { path, inode, dev },
    [ownerKey]: owner ? ownerView(owner, usernsPath) : null,
    ...rest,
    inode,
    dev,
    owner,
    ...some('usernsPath', usernsPath),
  };
}

/** One view for sandbox create, list and inspect: the same keys in the same order. */
export function sandboxView(s: SandboxInfo | SandboxDetails): Record<string, unknown> {
  const { id, phase, ips, netnsPath, usernsPath, pid, containerId, createdAt, pendingUndo, ...more } = s as SandboxDetails;
  const { status, netnsPresent, ...rest } = more;
  return {
    id,
    phase,
    ips,
    ...(netnsPath !== undefined ? { netns: { path: netnsPath, ...some('present', netnsPresent) } } : {}),
    ...(usernsPath !== undefined ? { userns: { path: usernsPath } } : {}),
    ...(containerId !== undefined ? { pause: { id: containerId, ...some('pid', pid), ...some('status', status) } } : {}),
    createdAt,
    ...some('pendingUndo', pendingUndo),
    ...rest,
    ...some('netnsPath', netnsPath),
    ...some('usernsPath', usernsPath),
    ...some('pid', pid),
    ...some('containerId', containerId),
    ...some('status', status),
    ...some('netnsPresent', netnsPresent),
  };
}

/** The columns of a sandbox listing, for create and list alike. */
export const SANDBOX_COLUMNS = ['ID', 'PHASE', 'IPS', 'NETNS', 'PID'] as const;

export function sandboxRow(s: SandboxInfo): string[] {
  return [s.id, s.phase, s.ips.join(',') || '-', s.netnsPath ?? '-', s.pid !== undefined ? String(s.pid) : '-'];
}

export function containerView(r: PodContainerRecord): Record<string, unknown> {
  const { id, bundle, netnsPath, usernsPath, usernsPinned, pid, stdout, stderr, ...rest } = r;
  return {
    id,
    bundle,
    ...some('pid', pid),
    netns: { path: netnsPath },
    userns: { path: usernsPath, pinned: usernsPinned },
    stdout,
    stderr,
    ...rest,
    netnsPath,
    usernsPath,
    usernsPinned,
  };
}
