// The container's root filesystem: the shared rootfs idmapped READ-ONLY
// (nosuid, nodev) as the lower layer of an overlayfs whose upper and work
// dirs are the container's own, in a root-only dir of its bundle. What the
// pod writes lands in its upper dir under the pod's host ids (copy-ups too),
// never in the shared rootfs and never as host root.
//
//   BUNDLE/rootfs          overlayfs (nodev; setuid works inside the pod)
//   BUNDLE/overlay/        0700 root
//   BUNDLE/overlay/lower   idmapped read-only nosuid,nodev mount of the rootfs
//   BUNDLE/overlay/upper   the container's writes; root looks like lower's root
//   BUNDLE/overlay/work    overlayfs scratch
import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { invalidArg } from '../errors.js';
import { overlayMount } from '../kernel/mount.js';
import { stageIdmapped, unstage } from './idmap-fallback.js';

export interface RootfsLayout {
  /** The overlay mount the runtime gets as root.path. */
  target: string;
  dir: string;
  lower: string;
  upper: string;
  work: string;
}

export function rootfsLayout(bundle: string): RootfsLayout {
  const dir = path.join(bundle, 'overlay');
  return { target: path.join(bundle, 'rootfs'), dir, lower: path.join(dir, 'lower'), upper: path.join(dir, 'upper'), work: path.join(dir, 'work') };
}

// overlayfs splits its options at ',' and layer lists at ':', with '\' escapes.
const OVERLAY_UNSAFE = /[,:\\\n]/;

/** Refuses a bundle path overlayfs cannot take as a layer path (ERR_INVALID_ARG_VALUE). */
export function checkOverlayPath(bundle: string): void {
  if (OVERLAY_UNSAFE.test(bundle)) {
    throw invalidArg(`the bundle path ${JSON.stringify(bundle)} contains ",", ":", "\\" or a newline, which overlayfs options cannot carry; choose another state dir`);
  }
}

/** Makes BUNDLE/overlay with its empty upper and work dirs (no mounts yet). */
export async function makeOverlayDirs(l: RootfsLayout): Promise<void> {
  await mkdir(l.dir, { mode: 0o700 });
  await chmod(l.dir, 0o700); // whatever the umask
  await mkdir(l.upper, { mode: 0o700 });
  await mkdir(l.work, { mode: 0o700 });
}

/** Idmaps SOURCE read-only, nosuid, nodev onto the lower path. */
export async function stageLower(source: string, l: RootfsLayout, usernsPath: string): Promise<void> {
  // Not recursive: overlayfs does not cross mounts inside a layer anyway.
  await stageIdmapped(source, l.lower, { usernsPath, recursive: false, readonly: true });
}

/**
 * Gives the upper dir's root the owner and mode of the lower's root (as the
 * idmapped lower shows them), so "/" in the container is owned by the
 * container's root, then mounts the overlay at the target.
 */
export async function mountOverlay(l: RootfsLayout): Promise<void> {
  const root = await lstat(l.lower);
  await chown(l.upper, root.uid, root.gid);
  await chmod(l.upper, root.mode & 0o7777);
  await mkdir(l.target, { mode: 0o700 });
  try {
    // nodev only: setuid programs of the image (su, ping) keep working in the
    // pod, and no other host user can reach this mount (the bundle is 0710).
    await overlayMount(l, l.target, { nosuid: false, nodev: true }, {
      context: `mounting the overlay rootfs at ${l.target}`,
      hints: { EINVAL: 'the kernel refused the overlay layers (overlayfs on an idmapped lower needs Linux 5.19+)' },
    });
  } catch (err) {
    await unstage(l.target).catch(() => {});
    throw err;
  }
}
