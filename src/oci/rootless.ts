// What a container started by an unprivileged user can have: the spec a
// root runtime would get, less what needs host privilege.
//   - no cgroup limits or cgroupsPath (no delegated cgroup to put them in);
//   - devices stay listed: a runtime in a user namespace bind-mounts them
//     from the host instead of mknod, and no device cgroup rules go with them;
//   - the shared rootfs is the root, read-only, inside the container's own
//     mount namespace, with a fresh tmpfs on /tmp, /run and /var/tmp;
//   - the maps the runtime is told (see runtimeMaps);
//   - no supplementary groups: the runtime may not set them.
import { lstatSync } from 'node:fs';
import path from 'node:path';
import type { IdMapping } from '../idmap.js';
import { ROOTLESS_UNSUPPORTED, rootlessError } from '../rootless/errors.js';
import type { Mount, Spec } from './types.js';

/** Where a read-only rootfs gets a writable tmpfs of the container's own. */
export const ROOTLESS_SCRATCH = ['/run', '/tmp', '/var/tmp'] as const;

export interface RootlessSpecOptions {
  /** The rootfs as the runtime gets it (already checked). */
  rootfs: string;
  /** False hands the rootfs over as it is (writable where its modes allow, no tmpfs added). */
  readonlyRootfs: boolean;
  /** The caller's uid and gid: see runtimeMaps. */
  uid: number;
  gid: number;
}

/**
 * The maps runc 1.1.5 is told when it joins a user namespace by path. It
 * does not write them (the namespace has its maps); it uses the host id of
 * container root for one thing, the owner of its exec fifo and stdio pipes,
 * and an unprivileged caller cannot chown to a subordinate id
 * ("chown .../exec.fifo: operation not permitted"). The caller's own ids
 * are what it can give; the kernel's maps of the joined namespace are what
 * the container gets.
 */
export function runtimeMaps(uid: number, gid: number): { uidMappings: IdMapping[]; gidMappings: IdMapping[] } {
  return { uidMappings: [{ containerID: 0, hostID: uid, size: 1 }], gidMappings: [{ containerID: 0, hostID: gid, size: 1 }] };
}

function isDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Rewrites SPEC (built by buildSpec for a pod) for a rootless runtime; returns it. */
export function rootlessSpec(spec: Spec, o: RootlessSpecOptions): Spec {
  delete spec.linux.resources;
  delete spec.linux.cgroupsPath;
  Object.assign(spec.linux, runtimeMaps(o.uid, o.gid));
  // A rootless runtime may not call setgroups (runc: "cannot set any
  // additional groups in a rootless container"): the primary group alone
  // goes, and a user with more is refused rather than run without them.
  const user = spec.process.user;
  const extra = (user.additionalGids ?? []).filter((g) => g !== user.gid);
  if (extra.length > 0) {
    throw rootlessError(
      ROOTLESS_UNSUPPORTED,
      `the container's user has supplementary groups ${extra.join(',')}, which a rootless runtime cannot set`,
      "run as a user without supplementary groups in the rootfs's /etc/group, or give the user as UID[:GID]",
    );
  }
  delete user.additionalGids;
  if (!o.readonlyRootfs) return spec;
  spec.root.readonly = true;
  const taken = new Set(spec.mounts.map((m) => path.posix.normalize(m.destination)));
  const scratch: Mount[] = [];
  for (const d of ROOTLESS_SCRATCH) {
    // Only on dirs the rootfs has (not links): the runtime would otherwise
    // make the mount point in the shared rootfs, or follow a link out of it.
    if (taken.has(d) || !isDir(path.join(o.rootfs, d))) continue;
    scratch.push({ destination: d, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', d === '/run' ? 'mode=755' : 'mode=1777'] });
  }
  // After the kernel filesystems, before the caller's volumes: one under /run or /tmp lands on the tmpfs.
  const kernelFs = /^\/(proc|dev|sys)(\/|$)/;
  const at = spec.mounts.findIndex((m) => !kernelFs.test(m.destination));
  spec.mounts.splice(at < 0 ? spec.mounts.length : at, 0, ...scratch);
  return spec;
}
