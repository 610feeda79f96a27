// Mounts nstool makes itself: idmapped binds and a one-layer overlayfs, made
// detached and moved into place (open_tree / fsopen + mount_setattr +
// move_mount), and their removal.
import { callAsync, callSync } from '../errors.js';
import { core, type Why } from './core.js';

export interface IdmapMountOptions {
  /** The user namespace whose maps the mount takes. */
  userns: string;
  recursive: boolean;
  readonly: boolean;
  nosuid: boolean;
  nodev: boolean;
}

/** Mounts SOURCE at TARGET (which must exist) idmapped with the maps of o.userns. */
export async function idmapMount(source: string, target: string, o: IdmapMountOptions, why: Why = {}): Promise<void> {
  await callAsync(() => core().idmapMount(source, target, o.userns, o.recursive, o.readonly, o.nosuid, o.nodev), why.context, why.hints);
}

export interface OverlayLayers {
  lower: string;
  upper: string;
  work: string;
}

/** Mounts an overlayfs of one lower layer at TARGET. */
export async function overlayMount(l: OverlayLayers, target: string, o: { nosuid: boolean; nodev: boolean }, why: Why = {}): Promise<void> {
  await callAsync(() => core().overlayMount(l.lower, l.upper, l.work, target, o.nosuid, o.nodev), why.context, why.hints);
}

/** Detaches the mount at TARGET (never following a link); false when nothing was mounted there. */
export function unmountSync(target: string, why: Why = {}): boolean {
  return callSync(() => core().unmountSync(target), why.context, why.hints);
}
