// The OCI runtime-spec builder.
export { buildSpec, normalizeCapabilities, specNeedsIdmap } from './build.js';
export { writeBundle } from './bundle.js';
export { rootlessSpec, runtimeMaps, ROOTLESS_SCRATCH } from './rootless.js';
export type { RootlessSpecOptions } from './rootless.js';
export { resolveUser, parseGroup, parsePasswd } from './user.js';
export { readRootfsFile } from './rootfs-path.js';
export { mergeArgs, mergeEnv, pickCwd, DEFAULT_PATH } from './process-args.js';
export { lockedFlags } from './mounts.js';
export {
  DEFAULT_CAPABILITIES,
  DEFAULT_DEVICES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  DEFAULT_RLIMITS,
} from './defaults.js';
export { OCI_VERSION } from './types.js';
export type {
  BuildSpecOptions,
  Capabilities,
  Device,
  DeviceCgroup,
  Hook,
  Hooks,
  ImageConfig,
  Linux,
  Mount,
  MountRequest,
  Namespace,
  NamespaceType,
  Process,
  Propagation,
  Rlimit,
  Spec,
  User,
} from './types.js';
