// Public API.
export { NstoolError, fromNative } from './errors.js';
export type { ErrorFields } from './errors.js';
export {
  allocateFromSubid,
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
  createPodNetns,
  createPodNetnsSync,
  deletePodNetns,
  generateName,
  hostUsernsInode,
  inspectNetns,
  listNetns,
  resolvePin,
  validateName,
  DEFAULT_PIN_DIR,
  DEFAULT_USERNS_PIN_DIR,
} from './netns.js';
export type { CreatePodNetnsOptions, DeleteResult, ListEntry, NetnsInfo, NsOwner, PinDirs, PodNetns } from './netns.js';
export { execInNetns, runInNamespaces, which } from './exec.js';
export type { ExecInNetnsOptions, RunOptions, RunResult } from './exec.js';
