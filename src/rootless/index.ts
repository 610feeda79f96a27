// Rootless mode: what nstool does for a user without CAP_SYS_ADMIN in the
// initial user namespace.
export { currentMode, detectMode, hasSysAdmin, isInitialUidMap } from './mode.js';
export type { Mode } from './mode.js';
export {
  createPodNetnsRootless,
  deletePodNetnsRootless,
  execInNetnsRootless,
  inspectNetnsRootless,
  listNetnsRootless,
} from './netns.js';
export type { KeeperPin, RootlessPodNetns } from './netns.js';
export { runtimeDirs } from './runtime-dir.js';
export type { RuntimeDirs } from './runtime-dir.js';
export { findKeeper, hostPath } from './keeper.js';
export type { KeeperRef } from './protocol.js';
export { parseSubid } from './subid.js';
export { KEEPER, NET_BACKEND_FAILED, NET_BACKEND_MISSING, NEWIDMAP_FAILED, NEWIDMAP_MISSING, NEWIDMAP_NOT_SETUID, ROOTLESS_UNSUPPORTED, RUNTIME_DIR, SUBID, TUN, USERNS_DISABLED } from './errors.js';
export { DEFAULT_IFNAME, parseNetRecord, parsePortSpec, POD_NET, rootlessNetworkAlive, startRootlessNetwork, stopRootlessNetwork } from './network.js';
export type { PortForward, RootlessNetBackend, RootlessNetOptions, RootlessNetRecord } from './network.js';
