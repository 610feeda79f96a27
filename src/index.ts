// Public API. Node's types are part of it (Buffer, NodeJS.Signals), and
// TypeScript 7 no longer loads @types/node by itself: the declarations ask for it.
/// <reference types="node" preserve="true" />
export { NstoolError, fromNative } from './errors.js';
export type { ErrorFields } from './errors.js';
export {
  allocateFromSubid,
  assertNoHostRoot,
  hostRootMapping,
  HOST_ROOT_MAP,
  formatIdMap,
  parseIdMap,
  parseKernelMap,
  sameIdMap,
  toHostId,
  toKernelMap,
  validateIdMap,
  MAX_MAP_LINES,
} from './idmap.js';
export type { IdMapInput, IdMapping } from './idmap.js';
export {
  showName,
  showValue,
  validateContainerId,
  validateIfName,
  validateNetworkName,
  validatePinName,
  validatePluginType,
  CONTAINER_ID_MAX,
  CONTAINER_ID_RE,
  IFNAME_MAX,
  NAME_MAX,
} from './names.js';
export {
  createPodNetns,
  createPodNetnsSync,
  deletePodNetns,
  deletePodNetnsSync,
  generateName,
  hostUsernsInode,
  inspectNetns,
  listNetns,
  resolvePin,
  validateName,
  DEFAULT_PIN_DIR,
  DEFAULT_USERNS_PIN_DIR,
} from './netns.js';
export type { CreatePodNetnsOptions, DeleteOptions, DeleteResult, ListEntry, NetnsInfo, NsOwner, PinDirs, PodNetns } from './netns.js';
export {
  BUILTIN_POOL,
  closeIdAllocator,
  DEFAULT_ALLOC_DIR,
  DEFAULT_AUTO_SIZE,
  DEFAULT_AUTO_USER,
  IDS_EXHAUSTED,
  MAP_OVERLAP,
  subidPool,
} from './idalloc.js';
export type { IdRange } from './idalloc.js';
export { execInNetns, runInNamespaces, which } from './exec.js';
export { runProcess, ProcessError } from './process.js';
export type { ProcessOptions, ProcessResult } from './process.js';
export type { ExecInNetnsOptions, RunOptions, RunResult } from './exec.js';
export { buildSpec, specNeedsIdmap, writeBundle, resolveUser } from './oci/index.js';
export type { BuildSpecOptions, MountRequest, Spec } from './oci/index.js';
export { RuncClient, parseVersion } from './runc/client.js';
export type { RuncClientOptions, ContainerState, RuntimeVersion, OciProcess } from './runc/client.js';
export { RuntimeError, RUNTIME_ERROR, isNotFound, isExists } from './runc/error.js';
export type { RuntimeErrorReason } from './runc/error.js';
export { probeContainer } from './runc/probe.js';
export type { Presence } from './runc/probe.js';
export { gcRuntimeFiles } from './runc/client.js';
export { idmapSupport, assertIdmapGate, IDMAP_UNSUPPORTED } from './runc/idmap-gate.js';
export { stageIdmapped, unstage, applyIdmapFallback } from './pod/idmap-fallback.js';
export { podUserns } from './pod/userns.js';
export { runPodContainer, removePodContainer, removeBundleLitter, podSpec } from './pod/container.js';
export type { PodContainerOptions, PodContainerRecord } from './pod/container.js';
export {
  addNetwork,
  cachedResult,
  checkNetwork,
  CniError,
  CniNetwork,
  delNetwork,
  findPlugin,
  loadNetworkList,
  loadNetworkListFile,
  parseNetworkList,
  pluginVersions,
  ResultCache,
  toNetworkList,
} from './cni/index.js';
export type { AddOptions, CacheEntry, CniOptions, CniResult, DelOutcome, NetworkConfigList, PluginConf, RuntimeConf } from './cni/index.js';
export { cniAnnotations, cniHooks, parseOciState, runCniHook, HOOK_ANNOTATIONS } from './hook/index.js';
export type { CniHookSettings, CniHooksOptions, HookOutcome, OciHook, OciState } from './hook/index.js';
export { createSandbox, deleteSandbox, listSandboxes, loadSandbox, gc, SandboxError, Rollback, RollbackError } from './sandbox/index.js';
export type { CreateSandboxOptions, GcAction, GcOptions, SandboxDetails, SandboxInfo, SandboxNetwork } from './sandbox/index.js';
export { features, featureChecks, formatFeatures, DEFAULT_FEATURES_CACHE_DIR, FEATURES_SCHEMA, type FeaturesOptions, type FeaturesReport, type FeatureCheck } from './features/index.js';
export { sandboxNamespaces } from './sandbox/index.js';
export {
  CNI_PLUGIN,
  NETNS_CREATE,
  NETNS_DELETE,
  POD_REMOVE,
  POD_RUN,
  RUNTIME_CALL,
  SANDBOX_CREATE,
  SANDBOX_DELETE,
  SANDBOX_GC,
  SANDBOX_STEP,
} from './trace.js';
export type { StepEvent } from './trace.js';
export type { SandboxNamespaces } from './sandbox/index.js';
export { parseNetRecord, parsePortSpec, rootlessNetworkAlive, startRootlessNetwork, stopRootlessNetwork } from './rootless/network.js';
export type { PortForward, RootlessNetBackend, RootlessNetOptions, RootlessNetRecord } from './rootless/network.js';
export { startDetached, killProcess } from './process.js';
export type { DetachedOptions, DetachedProcess } from './process.js';
