// The errors of rootless mode: each names what is missing and how to fix it.
import { NstoolError } from '../errors.js';

/** /etc/subuid or /etc/subgid grants no (or not this) range. */
export const SUBID = 'ERR_NSTOOL_SUBID';
/** newuidmap/newgidmap (the uidmap package) is not installed. */
export const NEWIDMAP_MISSING = 'ERR_NSTOOL_NEWIDMAP_MISSING';
/** newuidmap/newgidmap is installed without the privilege to write maps. */
export const NEWIDMAP_NOT_SETUID = 'ERR_NSTOOL_NEWIDMAP_NOT_SETUID';
/** newuidmap/newgidmap ran and refused. */
export const NEWIDMAP_FAILED = 'ERR_NSTOOL_NEWIDMAP_FAILED';
/** The kernel does not let this user make a user namespace. */
export const USERNS_DISABLED = 'ERR_NSTOOL_USERNS_DISABLED';
/** No usable per-user runtime directory. */
export const RUNTIME_DIR = 'ERR_NSTOOL_RUNTIME_DIR';
/** The keeper did not start, does not answer, or answered nonsense. */
export const KEEPER = 'ERR_NSTOOL_KEEPER';
/** /dev/net/tun is missing or not usable by this user (the network backends need it). */
export const TUN = 'ERR_NSTOOL_TUN';
/** Neither pasta nor slirp4netns (or not the one asked for) is installed. */
export const NET_BACKEND_MISSING = 'ERR_NSTOOL_NET_BACKEND_MISSING';
/** The network backend did not start, or refused a port forward. */
export const NET_BACKEND_FAILED = 'ERR_NSTOOL_NET_BACKEND_FAILED';
/** Something only root can do was asked for. */
export const ROOTLESS_UNSUPPORTED = 'ERR_NSTOOL_ROOTLESS_UNSUPPORTED';

export function rootlessError(code: string, message: string, hint: string, extra: { errno?: number; syscall?: string; path?: string; cause?: unknown } = {}): NstoolError {
  return new NstoolError(message, { code, hint, ...extra });
}

export function usernsDisabled(detail: string, cause?: unknown): NstoolError {
  return rootlessError(
    USERNS_DISABLED,
    `this user may not create user namespaces (${detail})`,
    'ask the administrator to allow unprivileged user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1` ' +
      '(Debian kernels), a non-zero user.max_user_namespaces, or an AppArmor profile where ' +
      'kernel.apparmor_restrict_unprivileged_userns=1; or run nstool as root',
    cause === undefined ? {} : { cause },
  );
}

export function syncNeedsRoot(): NstoolError {
  return rootlessError(
    ROOTLESS_UNSUPPORTED,
    'createPodNetnsSync needs root: without it the maps come from newuidmap and the pins from the keeper, both separate processes',
    'use createPodNetns (it returns a Promise)',
  );
}
