export {
  createSandbox,
  deleteSandbox,
  listSandboxes,
  loadSandbox,
  sandboxDirs,
  validateSandboxId,
  containerIdOf,
  SandboxError,
  SANDBOX_PREFIX,
  DEFAULT_BUNDLE_DIR,
} from './sandbox.js';
export type { CreateSandboxOptions, SandboxDetails, SandboxDirs, SandboxInfo, SandboxNetwork, SandboxRuntime } from './sandbox.js';
export { gc } from './gc.js';
export type { GcAction, GcOptions } from './gc.js';
export { DEFAULT_STATE_DIR } from './state.js';
export type { SandboxState } from './state.js';
export { Rollback, RollbackError } from './rollback.js';
