export { createSandbox } from './create.js';
export { deleteSandbox } from './delete.js';
export { listSandboxes, loadSandbox, sandboxNamespaces } from './query.js';
export type { SandboxNamespaces } from './query.js';
export { gc } from './gc.js';
export type { GcAction, GcOptions } from './gc.js';
export { SandboxError } from './errors.js';
export { instanceOf, resourceName, SANDBOX_PREFIX, validateSandboxId } from './instance.js';
export type { Instance } from './instance.js';
export { DEFAULT_BUNDLE_DIR, DEFAULT_CNI_CACHE_DIR, DEFAULT_IPC_PIN_DIR, DEFAULT_UTS_PIN_DIR, sandboxDirs } from './types.js';
export type {
  CreateSandboxOptions,
  DeleteSandboxOptions,
  SandboxDetails,
  SandboxDirs,
  SandboxInfo,
  SandboxNetwork,
  SandboxRuntime,
  StepHook,
} from './types.js';
export { DEFAULT_STATE_DIR } from './state.js';
export type { SandboxState } from './state.js';
export { Rollback, RollbackError } from './rollback.js';
export { containerIdOf } from './names.js';
